import { sql, type Kysely } from "kysely";
import type { Bus } from "@mam/bus/connection.ts";
import type { Actor, EventEnvelope } from "@mam/contracts/envelope.ts";
import { AppError } from "@mam/contracts/errors.ts";
import type { Clock, IdGen } from "@mam/runtime/ids.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import { recordInOutbox, tenantKeyOf, type EncodedEvent } from "./outbox.ts";
import type { RecentlyApplied } from "./recent.ts";

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

/** Moves each tenant's checkpoint of a projection up to the highest of these sequences. */
export async function advanceCheckpoint(db: Kysely<any>, projection: string, items: Sequenced<Pick<EventEnvelope, "tenantId">>[]): Promise<void> {
  // One row per tenant in the statement: an upsert may not touch the same row twice.
  const last = new Map<string, number>();
  for (const { e, seq } of items) last.set(e.tenantId ?? "_", Math.max(seq, last.get(e.tenantId ?? "_") ?? 0));
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
  await sql`select pg_advisory_xact_lock(hashtextextended(${`${context}:${tenantId ?? "operator"}`}, 0))`.execute(tx);
}

/**
 * Applies a consumed event under its tenant's lock. Most events reach their consumer
 * after the command that appended them applied them inline: one read without a lock
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

export interface EventDraft<E extends { type: string; schemaVersion: number; data: unknown }> {
  event: E;
  /**
   * The event's id when the command must not make a second event if it is decided again
   * (derived from what it is about); a fresh UUIDv7 otherwise. It is the Nats-Msg-Id, so a
   * repeated append within the stream's duplicate window is stored once.
   */
  eventId?: string;
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
  /** Events this process applied inline, for its consumer to skip without a query. */
  recent?: RecentlyApplied;
  /** Publishes committed outbox rows; told of each commit. */
  relay?: { kick(tenantKey: string): Promise<void>; remember(events: EncodedEvent[]): void };
}

/**
 * The command path of an event-sourced service: serialise decisions per tenant (an
 * advisory lock held by the transaction), decide against the read model, append each
 * event durably, apply it to the read model in the same transaction, then read the
 * answer, so a GET right after sees it. The service's durable consumer applies the same
 * events again idempotently; it rebuilds the read model and heals a crash between an
 * append and the commit.
 */
export type Envelope<E extends { type: string; schemaVersion: number; data: unknown }> = EventEnvelope<E["data"]> & E;

export interface ExecutorOptions<DB, E extends { type: string; schemaVersion: number; data: unknown }> {
  context: string;
  /** The read model `apply` writes (its checkpoint is advanced once the events have sequences). */
  projection: string;
  /** Applies events, in order, each once, to the read model in the command's transaction; resolves with those it applied. */
  apply: (tx: Kysely<DB>, events: Sequenced<Envelope<E>>[]) => Promise<Sequenced<{ id: string }>[]>;
}

/** One command's events in their envelopes: each caused by the one before. */
export function envelopesOf<DB, E extends { type: string; schemaVersion: number; data: unknown }>(
  ctx: CommandContext<DB>,
  context: string,
  meta: CommandMeta,
  drafts: EventDraft<E>[],
): Envelope<E>[] {
  let causationId: string | null = null;
  return drafts.map((d) => {
    const envelope = {
      id: d.eventId ?? ctx.newId(),
      type: d.event.type,
      schemaVersion: d.event.schemaVersion,
      context,
      tenantId: d.tenantId,
      workspaceId: d.workspaceId,
      aggregateId: d.aggregateId,
      aggregateVersion: d.aggregateVersion,
      occurredAt: ctx.clock().toISOString(),
      causationId,
      correlationId: meta.requestId,
      actor: meta.actor,
      data: d.event.data,
    } as Envelope<E>;
    causationId = envelope.id;
    return envelope;
  });
}

/**
 * Applies events in the caller's transaction, then writes them to the outbox in the same
 * transaction: the read model and the events commit together or not at all, and the relay
 * publishes them after the commit. An event the read model refuses is never recorded.
 */
export async function applyAndRecord<DB, E extends { type: string; schemaVersion: number; data: unknown }>(
  o: ExecutorOptions<DB, E>,
  tx: Kysely<DB>,
  /** The tenant whose lock the transaction holds. */
  lockedTenant: string | null,
  envelopes: Envelope<E>[],
): Promise<EncodedEvent[]> {
  // The relay keeps a tenant's commit order only if each of its outbox rows was written
  // under that tenant's lock.
  const stray = envelopes.find((e) => tenantKeyOf(e.tenantId) !== tenantKeyOf(lockedTenant));
  if (stray) throw new Error(`${stray.type} of tenant ${stray.tenantId} decided under the lock of ${lockedTenant}`);
  // Sequence 0: the stream gives the real ones when the relay publishes (applied_events keeps it for information only).
  const fresh = new Set(
    (
      await o.apply(
        tx,
        envelopes.map((e) => ({ e, seq: 0 })),
      )
    ).map(({ e }) => e.id),
  );
  // An event applied before (decided again with the same derived id) was recorded then.
  return recordInOutbox(
    tx,
    envelopes.filter((e) => fresh.has(e.id)),
  );
}

/** How long a command's answer waits for its events to reach the stream (it succeeds either way). */
const PUBLISH_WAIT_MS = 2_000;

/**
 * After a commit: the events are remembered as applied (for this process's consumer) and
 * the relay is asked to publish them now. The answer waits for that, within a bound, so
 * what follows from the events (a gateway evicting a revoked key, a local delivery) has
 * usually begun when the caller hears back; with NATS down it answers after the bound, and
 * the relay publishes once NATS is back.
 */
export async function afterCommit<DB>(ctx: CommandContext<DB>, envelopes: EventEnvelope[], recorded: EncodedEvent[]): Promise<void> {
  if (!envelopes.length) return;
  ctx.recent?.add(envelopes.map((e) => e.id));
  if (!ctx.relay) return;
  ctx.relay.remember(recorded);
  const tenants = [...new Set(envelopes.map((e) => tenantKeyOf(e.tenantId)))];
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(tenants.map((t) => ctx.relay!.kick(t))),
    new Promise<void>((r) => {
      timer = setTimeout(r, PUBLISH_WAIT_MS);
    }),
  ]);
  clearTimeout(timer);
}

/**
 * A command in three steps. `load` reads, under the tenant's lock, what the decision needs
 * (no remote call, no write); `decide` is a pure function from that to the events (or a
 * thrown AppError: a refusal); `answer` runs after the events were applied, in the same
 * transaction: it may write what is not a projection (an idempotency record) and reads the
 * reply, so a GET right after sees it.
 */
export interface CommandSpec<DB, E extends { type: string; schemaVersion: number; data: unknown }, S, T> {
  load: (tx: Kysely<DB>) => Promise<S>;
  decide: (state: S) => EventDraft<E>[];
  answer: (tx: Kysely<DB>, state: S, events: EventDraft<E>[]) => Promise<T>;
  /** False when the caller needs the commit only, not the events in the stream (an inbound filing): the answer does not wait for the relay. */
  awaitPublish?: boolean;
}

/**
 * Thrown (from `answer`, after the events were applied) when a uniqueness another tenant's
 * command decides under its own lock was won by that command: an address, a domain name.
 * The loaded state was stale; the command is rolled back and loaded, decided and applied
 * again, with the winner now in its state.
 */
export class LostRace extends Error {
  override name = "LostRace";
}

/** Each round of a race has a winner, so this bounds how many may race for one name. */
const RACE_TRIES = 20;

export function commandExecutor<DB, E extends { type: string; schemaVersion: number; data: unknown }>(o: ExecutorOptions<DB, E>) {
  return async function execute<S, T>(
    ctx: CommandContext<DB>,
    /** Whose decisions these are: the tenant, or null for operator-level facts. */
    tenantId: string | null,
    meta: CommandMeta,
    s: CommandSpec<DB, E, S, T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let committed: Envelope<E>[] = [];
      let recorded: EncodedEvent[] = [];
      try {
        const result = await ctx.db.transaction().execute(async (tx) => {
          await lockTenant(tx, o.context, tenantId);
          const state = await s.load(tx);
          const drafts = s.decide(state);
          const envelopes = envelopesOf(ctx, o.context, meta, drafts);
          recorded = await applyAndRecord(o, tx, tenantId, envelopes);
          committed = envelopes;
          return s.answer(tx, state, drafts);
        });
        if (s.awaitPublish === false) void afterCommit(ctx, committed, recorded);
        else await afterCommit(ctx, committed, recorded);
        return result;
      } catch (err) {
        if (!(err instanceof LostRace)) throw err;
        if (attempt >= RACE_TRIES) throw new AppError("UNAVAILABLE", `${err.message}; retry shortly`);
        // Racers that lost together should not all meet again on the next name at once.
        await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
      }
    }
  };
}
