import { z } from "zod";

/** Replies shared by many commands: a resource gone, changed, or a page of a listing. */
export const Deleted = z.object({ deleted: z.boolean(), id: z.string() }).meta({ id: "Deleted" });
export const Updated = z.object({ updated: z.boolean(), id: z.string() }).meta({ id: "Updated" });
export const Pagination = z.object({ total: z.number().int(), limit: z.number().int(), offset: z.number().int() }).meta({ id: "Pagination" });
/** A request that carries nothing: the scope token says who asks and what about. */
export const NoParams = z.object({});
