import { sql, type RawBuilder, type SqlBool } from "kysely";
import { badCursor, checkPageRequest, decodeCursor, encodeCursor } from "@mam/contracts/pagination.ts";

/**
 * Keyset pages of lists ordered by `(created_at, id)` (or another instant and a UUID), over
 * the codec of contracts/pagination.ts. The instant travels as text with its six fractional
 * digits: through a JS Date it would lose the microseconds, and a page would skip or repeat
 * rows that share a millisecond.
 */

/** `limit`, `offset` and `cursor` as `pageFields` parses them. */
export interface PageRequest {
  limit: number;
  offset: number;
  cursor?: string | undefined;
}

/** The sort keys of the last row a page served. */
export interface RowKeys {
  at: string;
  id: string;
}

const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A column's instant as a cursor holds it (select it beside the row, as `key_at`). */
export const keyInstant = (column: string): RawBuilder<string> => sql<string>`to_char(${sql.ref(column)} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * The row a page asked by cursor starts after, or undefined for a first (or offset) page.
 * A cursor of another list, another filter, or with keys Postgres would not read is a 400
 * here, never a failed query.
 */
export function cursorKeys(list: string, req: PageRequest): RowKeys | undefined {
  checkPageRequest(req);
  if (req.cursor === undefined) return undefined;
  const [at, id] = decodeCursor(list, req.cursor, ["s", "s"]) as [string, string];
  if (!INSTANT.test(at) || !UUID.test(id)) {
    throw badCursor();
  }
  return { at, id };
}

/**
 * Rows past the cursor's in the list's order. Compared as one row value, so an index on
 * `(…, time, id)` serves it as a range and no row is read twice.
 */
export function pastKeys(timeColumn: string, idColumn: string, k: RowKeys, order: "asc" | "desc" = "asc"): RawBuilder<SqlBool> {
  return sql<SqlBool>`(${sql.ref(timeColumn)}, ${sql.ref(idColumn)}) ${sql.raw(order === "asc" ? ">" : "<")} (${k.at}::timestamptz, ${k.id}::uuid)`;
}

/** A query reads one row more than the page: whether it came says if there is a next page. */
export function pageOf<R extends { key_at: string }>(list: string, rows: R[], limit: number, idOf: (r: R) => string): { rows: R[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { rows: page, nextCursor: rows.length > limit && last ? encodeCursor(list, [last.key_at, idOf(last)]) : null };
}

/** The `pagination` of an answer. `total` counts the whole list in the caller's scope, not what is left after the cursor. */
export const paginationOf = (req: PageRequest, total: number, nextCursor: string | null) => ({ total, limit: req.limit, offset: req.offset, nextCursor });
