import { sql, type Kysely } from "kysely";
import { AppError } from "@mam/contracts/errors.ts";
import type { Backbone } from "./backbone.ts";
import { tenantLockKey, type ProjectionTables } from "./event-sourcing.ts";

/**
 * The command side's guard against a read model being rebuilt (see rebuild.ts for the
 * rebuild itself): a rebuild is recorded as a row of the projection checkpoints' table; a
 * command refuses while it is there, and work that reads the read model without deciding
 * waits for it to go.
 */

export interface Rebuild {
  targetSeq: number;
  startedAt: string;
}

/** The row recording a rebuild in progress, in the projection checkpoints' table under a name of its own. */
export const recordName = (projection: string) => `${projection}@rebuild`;
/**
 * Commands share it; a rebuild takes it alone to empty the read model (see
 * lockForDecision). Advisory locks are the whole database's: named after the schema
 * too (the record and the tables it guards live there), which a command's transaction
 * knows as its current schema.
 */
export const rebuildLock = (projection: string) => sql`hashtextextended(${"rebuild:"} || current_schema() || ${`:${projection}`}, 0)`;

/**
 * Whether the projection's rebuild is recorded, as an SQL expression for a read to select
 * beside its rows: what it says holds for the snapshot those rows were read in (no record
 * there: the read model was whole when they were read), at no round trip of its own.
 */
export const rebuildingIn = (projection: string) => sql<boolean>`exists (select 1 from projection_checkpoint where projection = ${recordName(projection)})`;

/** The rebuild of `projection` recorded and not done yet, if any. */
export async function rebuildRecorded(db: Kysely<any>, projection: string): Promise<Rebuild | undefined> {
  const row = await (db as Kysely<ProjectionTables>)
    .selectFrom("projection_checkpoint")
    .select(["stream_seq", "updated_at"])
    .where("projection", "=", recordName(projection))
    .executeTakeFirst();
  return row ? { targetSeq: Number(row.stream_seq), startedAt: new Date(row.updated_at).toISOString() } : undefined;
}

/**
 * For the command path, in its transaction, before it loads: takes the tenant's lock (see
 * lockTenant), then refuses while the read model its decisions read is being rebuilt. The
 * shared lock waits for a rebuild emptying the tables to commit (and keeps one from starting
 * while the command runs), so a command never decides on a read model emptied under it. One
 * round trip: the kit's lock_for_decision takes the locks, the tenant's first, then reads the
 * record in a statement of its own, begun once both are held (a statement reads what was
 * committed when it began, and a rebuild that committed while this one waited for the shared
 * lock must be seen).
 */
export async function lockForDecision(tx: Kysely<any>, context: string, tenantId: string | null, projection: string): Promise<void> {
  const r = await sql<{ rebuilding: boolean }>`
    select lock_for_decision(${tenantLockKey(context, tenantId)}, ${rebuildLock(projection)}, ${recordName(projection)}) as rebuilding`.execute(tx);
  if (r.rows[0]!.rebuilding) throw new AppError("UNAVAILABLE", "The read model is being rebuilt; retry shortly");
}

/**
 * Whether the projection's read model is being rebuilt (its record is there): for work that
 * reads the read model without deciding a command (background workers, reads other
 * services build on), which must wait rather than take a partial model for the whole.
 */
export async function isRebuilding(db: Kysely<any>, projection: string): Promise<boolean> {
  return (await rebuildRecorded(db, projection)) !== undefined;
}

/**
 * Taken by a replica claiming a replay at start (projection.ts), by a reset while it empties
 * the read model and by a new lease holder reading the rebuild record: one at a time. Named
 * per deployment (schema and subject prefix) as the lease is: many share a database.
 */
export const replayLockName = (b: Backbone<any>, projection: string) => `replay:${b.store.schema}:${b.bus.prefix}:${projection}`;

export async function lockReplay(tx: Kysely<any>, b: Backbone<any>, projection: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${replayLockName(b, projection)}, 0))`.execute(tx);
}
