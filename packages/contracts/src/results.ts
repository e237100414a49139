import { z } from "zod";
import { PaginationOut } from "./pagination.ts";

/** Replies shared by many commands: a resource gone, changed, or a page of a listing. */
export const Deleted = z.object({ deleted: z.boolean(), id: z.string() }).meta({ id: "Deleted" });
export const Updated = z.object({ updated: z.boolean(), id: z.string() }).meta({ id: "Updated" });
/** One schema for every list's page answer (see pagination.ts: `nextCursor` resumes after the last row). */
export const Pagination = PaginationOut;
/** A request that carries nothing: the scope token says who asks and what about. */
export const NoParams = z.object({});
