/**
 * The command path of an event-sourced service: decisions are serialised per tenant (an
 * advisory lock held by the transaction); a command loads, decides, applies its events to
 * the read model and writes them to the outbox, all in one transaction, then answers; the
 * relay publishes them after the commit. The service's durable consumer applies the same
 * events again idempotently, which is what rebuilds a read model.
 */
import type { Kysely } from "kysely";
import type { Bus } from "@mam/bus/connection.ts";
import type { Actor, EventEnvelope } from "@mam/contracts/envelope.ts";
import { AppError } from "@mam/contracts/errors.ts";
import type { Clock, IdGen } from "@mam/runtime/ids.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import { BatchedWrites } from "./batched-writes.ts";
import { lockForDecision } from "./rebuild-guard.ts";
import type { Sequenced } from "./event-sourcing.ts";
import { recordInOutbox, tenantKeyOf, type EncodedEvent } from "./outbox.ts";
import type { RecentlyApplied } from "./recent.ts";

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
  /**
   * Told of each commit's events as soon as it is known (before they are published, so a
   * consumer of this process meeting one of them finds what this made of it).
   */
  committed?: (envelopes: EventEnvelope[]) => void;
  /** Publishes committed outbox rows; told of each commit. */
  relay?: { kick(tenantKey: string): Promise<void>; remember(events: EncodedEvent[]): void };
}

/** An event of the command's union in its envelope. */
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
  try {
    ctx.committed?.(envelopes);
  } catch (err) {
    // What was committed stands: a listener's failure must not make it look failed to the caller.
    ctx.logger.error({ err }, "a commit's listener failed");
  }
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
  /** `writes` takes rows to write once every command of the transaction has answered (see BatchedWrites). */
  answer: (tx: Kysely<DB>, state: S, events: EventDraft<E>[], writes: BatchedWrites<DB>) => Promise<T>;
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
          // The tenant's lock; and never a decision on a read model being emptied and replayed (mam rebuild).
          await lockForDecision(tx, o.context, tenantId, o.projection);
          const state = await s.load(tx);
          const drafts = s.decide(state);
          const envelopes = envelopesOf(ctx, o.context, meta, drafts);
          recorded = await applyAndRecord(o, tx, tenantId, envelopes);
          committed = envelopes;
          const writes = new BatchedWrites<DB>();
          const answer = await s.answer(tx, state, drafts, writes);
          await writes.flush(tx);
          return answer;
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
