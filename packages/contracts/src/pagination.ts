import { z } from "zod";
import { AppError } from "./errors.ts";

/**
 * Keyset pagination, shared by every list. A cursor is opaque to clients: base64url of
 * `[list, ...sort keys of the last row served]`. The list names which query (and which
 * filters that change the order's meaning) it belongs to, so a cursor of one list given to
 * another is refused. It holds no secret and grants nothing: the query that reads it still
 * applies the caller's scope, so a forged cursor can only start a page somewhere else.
 */
export const MAX_CURSOR_CHARS = 512;

/** The query parameter as lists accept it. */
export const CursorParam = z
  .string()
  .min(1)
  .max(MAX_CURSOR_CHARS)
  .regex(/^[A-Za-z0-9_-]+$/, "must be a cursor from a previous page's nextCursor")
  .meta({ description: "the previous page's `pagination.nextCursor`: the page after it, with the same filters (not with offset)" });

/** `limit`, `offset` (kept for compatibility: large offsets are slower) and `cursor` of a list's query. */
export const pageFields = (defaultLimit = 50, maxLimit = 100) => ({
  limit: z.coerce.number().int().min(1).max(maxLimit).default(defaultLimit),
  offset: z.coerce
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .default(0)
    .meta({ description: "rows to skip; kept for compatibility, slower the larger it is: page with cursor instead" }),
  cursor: CursorParam.optional(),
});

export type SortKey = string | number;

export function encodeCursor(list: string, keys: SortKey[]): string {
  return Buffer.from(JSON.stringify([list, ...keys]), "utf8").toString("base64url");
}

/** The refusal of a cursor that is not the list's (also for sort keys a list finds unreadable). */
export const badCursor = () =>
  new AppError("VALIDATION_ERROR", "cursor is not one of this list's (take it from the previous page's nextCursor, with the same filters)");

/**
 * The sort keys a cursor carries, checked to be this list's and of the kinds expected
 * (`"s"` a string, `"n"` a finite number). Anything else is a 400, never a query.
 */
export function decodeCursor(list: string, raw: string, kinds: ("s" | "n")[]): SortKey[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, "base64url").toString("utf8"));
  } catch {
    throw badCursor();
  }
  if (!Array.isArray(parsed) || parsed.length !== kinds.length + 1 || parsed[0] !== list) throw badCursor();
  const keys = parsed.slice(1) as unknown[];
  keys.forEach((k, i) => {
    const ok = kinds[i] === "s" ? typeof k === "string" && k.length <= 200 : typeof k === "number" && Number.isFinite(k);
    if (!ok) throw badCursor();
  });
  return keys as SortKey[];
}

/** A page asked for by cursor starts after the cursor's row; offset is then not allowed (one or the other). */
export function checkPageRequest(q: { offset: number; cursor?: string | undefined }): void {
  if (q.cursor !== undefined && q.offset !== 0) throw new AppError("VALIDATION_ERROR", "give cursor or offset, not both");
}

/** The `pagination` object of a list's answer. `nextCursor` is null on the last page. */
export const PaginationOut = z
  .object({
    total: z.number().int(),
    limit: z.number().int(),
    offset: z.number().int(),
    nextCursor: z.string().nullable(),
  })
  .meta({ id: "Pagination" });
