import { sql, type Kysely } from "kysely";
import type { EventEnvelope } from "@mam/contracts/envelope.ts";

/** Rows that belong to no workspace (tenant- and operator-level facts) are filed under the nil UUID. */
export const NO_WORKSPACE = "00000000-0000-0000-0000-000000000000";

/** The two bookkeeping tables every projecting service has in its schema. */
export interface ProjectionTables {
  applied_events: { workspace_id: string; event_id: string; stream_seq: number };
  projection_checkpoint: { projection: string; tenant_key: string; stream_seq: number; updated_at: Date | string };
}

/**
 * Runs `evolve` for an event unless this projection already applied it, recording the
 * event id and advancing the checkpoint (one row per tenant, so tenants never wait on
 * each other's row) in the caller's transaction: data, dedupe record and checkpoint
 * commit together.
 */
export async function applyOnce(
  db: Kysely<any>,
  projection: string,
  e: Pick<EventEnvelope, "id" | "workspaceId" | "tenantId">,
  streamSeq: number,
  evolve: () => Promise<void>,
): Promise<boolean> {
  const fresh = await applyOnceMany(db, projection, [{ e, seq: streamSeq }], () => evolve());
  return fresh.length === 1;
}

export interface Sequenced<E> {
  e: E;
  /** The event's sequence number in the stream. */
  seq: number;
}

/**
 * `applyOnce` for a batch, in a constant number of statements: one insert records the
 * event ids and tells which are new, `evolve` applies those (in stream order), and one
 * upsert advances each tenant's checkpoint. Resolves with the events that were new.
 */
export async function applyOnceMany<E extends Pick<EventEnvelope, "id" | "workspaceId" | "tenantId">>(
  db: Kysely<any>,
  projection: string,
  items: Sequenced<E>[],
  evolve: (fresh: Sequenced<E>[]) => Promise<void>,
): Promise<Sequenced<E>[]> {
  if (!items.length) return [];
  const tx = db as Kysely<ProjectionTables>;
  const inserted = await tx
    .insertInto("applied_events")
    .values(items.map(({ e, seq }) => ({ workspace_id: e.workspaceId ?? NO_WORKSPACE, event_id: e.id, stream_seq: seq })))
    .onConflict((oc) => oc.doNothing())
    .returning("event_id")
    .execute();
  const isNew = new Set(inserted.map((r) => r.event_id));
  const fresh = items.filter(({ e }) => isNew.delete(e.id));
  if (!fresh.length) return fresh;
  await evolve(fresh);
  await advanceCheckpoint(db, projection, fresh);
  return fresh;
}

/**
 * Moves each tenant's checkpoint of a projection up to the highest of these sequences.
 * Events a command applies inline have no sequence yet (0: the stream gives it when the
 * relay publishes), and move nothing: no statement for them. Their consumer advances the
 * checkpoint when it meets them in the stream.
 */
export async function advanceCheckpoint(db: Kysely<any>, projection: string, items: Sequenced<Pick<EventEnvelope, "tenantId">>[]): Promise<void> {
  // One row per tenant in the statement: an upsert may not touch the same row twice.
  const last = new Map<string, number>();
  for (const { e, seq } of items) if (seq > 0) last.set(e.tenantId ?? "_", Math.max(seq, last.get(e.tenantId ?? "_") ?? 0));
  if (!last.size) return;
  const now = new Date();
  await (db as Kysely<ProjectionTables>)
    .insertInto("projection_checkpoint")
    .values([...last].map(([tenant_key, stream_seq]) => ({ projection, tenant_key, stream_seq, updated_at: now })))
    .onConflict((oc) =>
      oc.columns(["projection", "tenant_key"]).doUpdateSet({
        stream_seq: sql`greatest(projection_checkpoint.stream_seq, excluded.stream_seq)`,
        updated_at: sql`excluded.updated_at`,
      }),
    )
    .execute();
}

/** Whether this service has applied the event already (its dedupe row is committed). */
export async function wasApplied(db: Kysely<any>, e: Pick<EventEnvelope, "id" | "workspaceId">): Promise<boolean> {
  const row = await (db as Kysely<ProjectionTables>)
    .selectFrom("applied_events")
    .select("event_id")
    .where("workspace_id", "=", e.workspaceId ?? NO_WORKSPACE)
    .where("event_id", "=", e.id)
    .executeTakeFirst();
  return !!row;
}

export async function checkpointOf(db: Kysely<any>, projection: string): Promise<number | undefined> {
  const row = await (db as Kysely<ProjectionTables>)
    .selectFrom("projection_checkpoint")
    .select((eb) => eb.fn.max("stream_seq").as("seq"))
    .where("projection", "=", projection)
    .executeTakeFirst();
  return row?.seq === null || row?.seq === undefined ? undefined : Number(row.seq);
}

/**
 * Decisions and projections of one tenant are serialised on one advisory lock. The
 * command path holds it from decision to commit; the consumer takes it before applying
 * an event, so it never races a command that is still applying the same event (which
 * would deadlock on the event's dedupe row and the rows the command already wrote).
 */
export async function lockTenant(tx: Kysely<any>, context: string, tenantId: string | null): Promise<void> {
  await sql`select pg_advisory_xact_lock(${tenantLockKey(context, tenantId)})`.execute(tx);
}

/** The key of a tenant's lock in a context, as an SQL expression. */
export const tenantLockKey = (context: string, tenantId: string | null) => sql`hashtextextended(${`${context}:${tenantId ?? "operator"}`}, 0)`;

/**
 * Applies a consumed event under its tenant's lock. Most events reach their consumer
 * after the command that recorded them applied them inline: one read without a lock
 * settles those, so the consumer does not queue on the lock behind the tenant's commands.
 */
export async function applyConsumed<DB>(
  db: Kysely<DB>,
  context: string,
  e: Pick<EventEnvelope, "id" | "workspaceId" | "tenantId">,
  apply: (tx: Kysely<DB>) => Promise<unknown>,
): Promise<unknown> {
  if (await wasApplied(db, e)) return false;
  return db.transaction().execute(async (tx) => {
    await lockTenant(tx, context, e.tenantId);
    return apply(tx);
  });
}
