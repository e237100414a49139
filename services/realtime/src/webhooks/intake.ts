import type { JsMsg } from "@nats-io/jetstream";
import type { Kysely } from "kysely";
import { ZodError } from "zod";
import { allFeedSubjects, FeedEvent, feedStreamName } from "@mam/contracts/realtime-feed.ts";
import { toWebhookPayload } from "@mam/contracts/webhook-payload.ts";
import { NO_WORKSPACE } from "@mam/service-kit/event-sourcing.ts";
import type { Part } from "@mam/service-kit/service.ts";
import type { RealtimeContext } from "../context.ts";
import type { RealtimeDb, WebhookDeliveriesTable } from "../db/schema.ts";
import { BatchConsumer, type Settle } from "@mam/bus/batch-consumer.ts";
import type { Dispatcher } from "./dispatcher.ts";
import type { Leased } from "./queue.ts";

/** The durable consumer of the feed that turns its entries into deliveries (shared by realtime's replicas). */
export const WEBHOOKS_DURABLE = "realtime-webhooks";
/**
 * How far apart the intake's batches begin: each batch reads its tenants' webhooks with one
 * statement, and under a steady stream of mail (two or three entries per message) a batch
 * per entry made that statement the most frequent one the platform ran, a fifth of all per
 * send. An entry after a quiet spell is queued at once; under load one waits at most this long.
 */
const INTAKE_SPACING_MS = 25;
/** Queue rows per insert statement (each takes 15 parameters; one statement takes at most 65,535). */
const ROWS_PER_INSERT = 1_000;
/**
 * Bytes of bodies per insert statement (a single row whatever its size). Each row carries its
 * own copy of the body: a tenant's 50 webhooks and a batch of large messages would otherwise
 * make one statement of a gigabyte, past what Postgres takes in one message and past the heap,
 * and the same batch would fail on every replica, for ever.
 */
const BYTES_PER_INSERT = 16 * 1024 * 1024;

/** The rows in statements of at most ROWS_PER_INSERT rows and BYTES_PER_INSERT bytes of bodies. */
export function* insertChunks<R extends { body: string | null }>(rows: R[], maxRows = ROWS_PER_INSERT, maxBytes = BYTES_PER_INSERT): Generator<R[]> {
  let chunk: R[] = [];
  let bytes = 0;
  for (const row of rows) {
    const size = row.body?.length ?? 0;
    if (chunk.length && (chunk.length >= maxRows || bytes + size > maxBytes)) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(row);
    bytes += size;
  }
  if (chunk.length) yield chunk;
}

type Hook = { workspace_id: string; webhook_id: string; tenant_id: string; events: string[]; created_at: Date };

/**
 * The active webhooks of these tenants: which events each takes. Not where to send them, nor
 * the secret: those are read when an attempt starts (a row may wait its turn while the
 * webhook is paused, moved or deleted).
 */
function activeHooks(db: Kysely<RealtimeDb>, tenants: string[]): Promise<Hook[]> {
  return db
    .selectFrom("webhooks as w")
    .select(["w.workspace_id", "w.webhook_id", "w.tenant_id", "w.events", "w.created_at"])
    .where("w.tenant_id", "in", tenants)
    .where("w.is_active", "=", true)
    .execute();
}

/** A webhook takes an event of its tenant (of its workspace, unless tenant-wide) and of its types, that happened once it existed. */
const takes = (h: Hook, e: FeedEvent) =>
  h.tenant_id === e.tenantId &&
  (h.workspace_id === NO_WORKSPACE || h.workspace_id === e.workspaceId) &&
  h.events.includes(e.eventType) &&
  h.created_at.getTime() <= Date.parse(e.occurredAt);

type Row = WebhookDeliveriesTable & { hook: Hook };

/** The rows of these entries: one per webhook that takes each; rows this replica has room for leased to it. */
function rowsOf(ctx: RealtimeContext, dispatcher: Dispatcher, hooks: Hook[], events: FeedEvent[], admitted: Row[]): Row[] {
  const now = ctx.clock();
  const until = new Date(now.getTime() + dispatcher.leaseMs);
  const rows: Row[] = [];
  for (const e of events) {
    const mine = hooks.filter((h) => takes(h, e));
    if (!mine.length) continue;
    // Serialised once: these bytes are stored, signed and sent, on every attempt.
    const body = JSON.stringify(toWebhookPayload(e));
    for (const h of mine) {
      const attemptNow = dispatcher.admit({ webhook_id: h.webhook_id, tenant_id: e.tenantId }, Buffer.byteLength(body));
      const row: Row = {
        hook: h,
        webhook_id: h.webhook_id,
        event_id: e.eventId,
        workspace_id: h.workspace_id,
        tenant_id: e.tenantId,
        event_type: e.eventType,
        body,
        state: "pending",
        attempts: 0,
        first_attempt_at: null,
        next_attempt_at: now,
        retry_delay_ms: null,
        locked_until: attemptNow ? until : null,
        lease: attemptNow ? dispatcher.lease : null,
        created_at: now,
        completed_at: null,
      };
      rows.push(row);
      if (attemptNow) admitted.push(row);
    }
  }
  return rows;
}

const leasedOf = (r: Row): Leased => ({
  webhook_id: r.webhook_id,
  event_id: r.event_id,
  workspace_id: r.workspace_id,
  tenant_id: r.tenant_id,
  event_type: r.event_type,
  body: r.body!,
  attempts: 0,
  first_attempt_at: null,
  retry_delay_ms: null,
  leased_until: r.locked_until!.getTime(),
});

/**
 * Queues feed entries for every active webhook each is for, one row per webhook and event:
 * a redelivered entry adds nothing. Rows this replica has room for are leased to it from
 * the start and attempted at once, not when a poll finds them; the others wait in the queue
 * for room (here or on another replica). No transaction: every row stands alone, and a
 * batch that fails halfway is delivered again and adds only what is missing.
 */
export async function enqueue(ctx: RealtimeContext, dispatcher: Dispatcher, events: FeedEvent[]): Promise<number> {
  if (!events.length) return 0;
  const hooks = await activeHooks(ctx.db, [...new Set(events.map((e) => e.tenantId))]);
  if (!hooks.length) return 0;
  const admitted: Row[] = [];
  const rows = rowsOf(ctx, dispatcher, hooks, events, admitted);
  const fresh = new Set<string>();
  try {
    for (const chunk of insertChunks(rows)) {
      const inserted = await ctx.db
        .insertInto("webhook_deliveries")
        .values(chunk.map(({ hook: _, ...row }) => row))
        .onConflict((oc) => oc.columns(["webhook_id", "event_id"]).doNothing())
        .returning(["webhook_id", "event_id"])
        .execute();
      for (const r of inserted) fresh.add(`${r.webhook_id} ${r.event_id}`);
    }
  } finally {
    // What was queued and leased here is held; room goes back for the rest (queued before: a redelivered entry).
    const mine = admitted.filter((r) => fresh.has(`${r.webhook_id} ${r.event_id}`));
    for (const r of admitted) if (!fresh.has(`${r.webhook_id} ${r.event_id}`)) dispatcher.drop(r.webhook_id, r.body!.length);
    dispatcher.hold(mine.map(leasedOf));
    // Rows queued for whichever replica has room: told only now they are committed (a poll before would have missed them).
    if (fresh.size > mine.length) dispatcher.queuedForLater();
  }
  return fresh.size;
}

/**
 * Follows the feed, a batch at a time (what arrived while the last batch was queued, or within
 * INTAKE_SPACING_MS of its start, goes in the next, queued together); each entry is acknowledged once its deliveries are queued.
 * A new deployment starts from what the feed still holds; webhooks get only events that
 * happened once they existed, and a redelivered entry adds nothing, so replaying is harmless.
 * Every replica takes batches, unlike the feed's renderer (one at a time, for order): the
 * order entries are queued in is no promise to anyone, as deliveries are not ordered anyway
 * (several requests in flight per webhook, retries).
 */
export function webhookIntake(ctx: RealtimeContext, dispatcher: Dispatcher): Part {
  const consumer = new BatchConsumer({
    bus: ctx.bus,
    stream: feedStreamName(ctx.bus.prefix),
    durable: WEBHOOKS_DURABLE,
    filterSubject: allFeedSubjects(ctx.bus.prefix),
    logger: ctx.logger,
    startBackMs: ctx.cfg.FEED_RETENTION_S * 1000,
    spacingMs: INTAKE_SPACING_MS,
    handle: async (batch: JsMsg[], settle: Settle) => {
      const readable: { msg: JsMsg; e: FeedEvent }[] = [];
      for (const msg of batch) {
        try {
          readable.push({ msg, e: FeedEvent.parse(msg.json()) });
        } catch (err) {
          if (!(err instanceof ZodError || err instanceof SyntaxError)) throw err;
          ctx.logger.error({ err, seq: msg.seq, subject: msg.subject }, "unreadable feed entry; terminated");
          settle(msg, "term");
        }
      }
      await enqueue(
        ctx,
        dispatcher,
        readable.map((r) => r.e),
      );
      for (const { msg } of readable) settle(msg, "ack");
    },
  });
  return { start: () => consumer.start(), stop: () => consumer.stop() };
}
