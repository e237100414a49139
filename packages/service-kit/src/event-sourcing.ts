import { sql, type Kysely } from "kysely";
import type { Bus } from "@mam/bus/connection.ts";
import { appendEvent } from "@mam/bus/events.ts";
import type { Actor, EventEnvelope } from "@mam/contracts/envelope.ts";
import { AppError } from "@mam/contracts/errors.ts";
import type { Clock, IdGen } from "@mam/runtime/ids.ts";
import type { Logger } from "@mam/runtime/logger.ts";

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
  const tx = db as Kysely<ProjectionTables>;
  const inserted = await tx
    .insertInto("applied_events")
    .values({ workspace_id: e.workspaceId ?? NO_WORKSPACE, event_id: e.id, stream_seq: streamSeq })
    .onConflict((oc) => oc.doNothing())
    .executeTakeFirst();
  if (!inserted.numInsertedOrUpdatedRows) return false;
  await evolve();
  await tx
    .insertInto("projection_checkpoint")
    .values({ projection, tenant_key: e.tenantId ?? "_", stream_seq: streamSeq, updated_at: new Date() })
    .onConflict((oc) =>
      oc.columns(["projection", "tenant_key"]).doUpdateSet({
        stream_seq: sql`greatest(projection_checkpoint.stream_seq, excluded.stream_seq)`,
        updated_at: sql`excluded.updated_at`,
      }),
    )
    .execute();
  return true;
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
  await sql`select pg_advisory_xact_lock(hashtextextended(${`${context}:${tenantId ?? "operator"}`}, 0))`.execute(tx);
}

/** Applies a consumed event under its tenant's lock. */
export function applyConsumed<DB>(
  db: Kysely<DB>,
  context: string,
  e: Pick<EventEnvelope, "tenantId">,
  apply: (tx: Kysely<DB>) => Promise<unknown>,
): Promise<unknown> {
  return db.transaction().execute(async (tx) => {
    await lockTenant(tx, context, e.tenantId);
    return apply(tx);
  });
}

export interface EventDraft<E extends { type: string; schemaVersion: number; data: unknown }> {
  event: E;
  tenantId: string | null;
  workspaceId: string | null;
  aggregateId: string;
  aggregateVersion: number;
}

export interface CommandMeta {
  actor: Actor;
  requestId: string;
}

export interface CommandContext<DB> {
  db: Kysely<DB>;
  bus: Bus;
  logger: Logger;
  clock: Clock;
  newId: IdGen;
}

/**
 * The command path of an event-sourced service: serialise decisions per tenant (an
 * advisory lock held by the transaction), decide against the read model, append each
 * event durably, apply it to the read model in the same transaction, then read the
 * answer, so a GET right after sees it. The service's durable consumer applies the same
 * events again idempotently; it rebuilds the read model and heals a crash between an
 * append and the commit.
 */
export function commandExecutor<DB, E extends { type: string; schemaVersion: number; data: unknown }>(o: {
  context: string;
  apply: (tx: Kysely<DB>, e: EventEnvelope<E["data"]> & E, streamSeq: number) => Promise<unknown>;
}) {
  return async function execute<T>(
    ctx: CommandContext<DB>,
    /** Whose decisions these are: the tenant, or null for operator-level facts. */
    tenantId: string | null,
    meta: CommandMeta,
    decide: (tx: Kysely<DB>) => Promise<EventDraft<E>[]>,
    read: (tx: Kysely<DB>) => Promise<T>,
  ): Promise<T> {
    return ctx.db.transaction().execute(async (tx) => {
      await lockTenant(tx, o.context, tenantId);
      const drafts = await decide(tx);
      let causationId: string | null = null;
      const envelopes = drafts.map((d) => {
        const envelope = {
          id: ctx.newId(),
          type: d.event.type,
          schemaVersion: d.event.schemaVersion,
          context: o.context,
          tenantId: d.tenantId,
          workspaceId: d.workspaceId,
          aggregateId: d.aggregateId,
          aggregateVersion: d.aggregateVersion,
          occurredAt: ctx.clock().toISOString(),
          causationId,
          correlationId: meta.requestId,
          actor: meta.actor,
          data: d.event.data,
        } as EventEnvelope<E["data"]> & E;
        causationId = envelope.id;
        return envelope;
      });
      // Published together on one connection: the stream keeps their order, and a command
      // of many events waits for one round of acknowledgements, not one per event.
      const acks = await Promise.all(envelopes.map((e) => appendEvent(ctx.bus, e))).catch((err: unknown) => {
        ctx.logger.error({ err, types: envelopes.map((e) => e.type) }, "could not append events");
        throw new AppError("UNAVAILABLE", "The event store is unavailable; retry shortly");
      });
      for (const [i, envelope] of envelopes.entries()) await o.apply(tx, envelope, acks[i]!.seq);
      return read(tx);
    });
  };
}
