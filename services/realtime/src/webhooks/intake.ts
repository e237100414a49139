import { randomUUID } from "node:crypto";
import type { JsMsg } from "@nats-io/jetstream";
import { sql } from "kysely";
import { ZodError } from "zod";
import type { Bus } from "@mam/bus/connection.ts";
import { DurableConsumer } from "@mam/bus/consumer.ts";
import { allFeedSubjects, FeedEvent, feedStreamName, toWebhookPayload } from "@mam/contracts/realtime-feed.ts";
import { NO_WORKSPACE } from "@mam/service-kit/event-sourcing.ts";
import type { RealtimeContext } from "../context.ts";
import type { Dispatcher, Leased } from "./dispatcher.ts";

/** The durable consumer of the feed that turns its entries into deliveries (shared by realtime's replicas). */
export const WEBHOOKS_DURABLE = "realtime-webhooks";

/** `rt.<tenant>.<workspace>.<inbox>.<type>.<type>` → the workspace: entries of one workspace are queued in order. */
const workspaceKey = (msg: JsMsg) => msg.subject.split(".").at(-4) ?? "_";

/**
 * Queues one feed entry for every active webhook it is for (its tenant's, or its workspace's,
 * taking its event type, and created before it happened), one row per webhook, in one
 * transaction: a redelivered entry adds nothing. Rows this replica has room for are leased
 * to it from the start and attempted at once, not when a poll finds them.
 */
export async function enqueue(ctx: RealtimeContext, dispatcher: Dispatcher, e: FeedEvent): Promise<number> {
  const reserved: string[] = [];
  let leased: Leased[] = [];
  try {
    leased = await ctx.db.transaction().execute(async (tx) => {
      const hooks = await tx
        .selectFrom("webhooks as w")
        .innerJoin("webhook_secrets as s", (j) => j.onRef("s.workspace_id", "=", "w.workspace_id").onRef("s.webhook_id", "=", "w.webhook_id"))
        .select(["w.workspace_id", "w.webhook_id", "w.url", "s.secret"])
        .where("w.tenant_id", "=", e.tenantId)
        .where("w.workspace_id", "in", [e.workspaceId, NO_WORKSPACE])
        .where("w.is_active", "=", true)
        .where(sql<boolean>`${e.eventType} = any(w.events)`)
        .where("w.created_at", "<=", new Date(e.occurredAt))
        .execute();
      if (!hooks.length) return [];
      // Serialised once: these bytes are stored, signed and sent, on every attempt.
      const body = JSON.stringify(toWebhookPayload(e));
      const now = ctx.clock();
      const lease = randomUUID();
      const until = new Date(now.getTime() + dispatcher.leaseMs);
      const mine = new Set(hooks.filter((h) => dispatcher.reserve(h.webhook_id) && reserved.push(h.webhook_id)).map((h) => h.webhook_id));
      const inserted = await tx
        .insertInto("webhook_deliveries")
        .values(
          hooks.map((h) => ({
            webhook_id: h.webhook_id,
            event_id: e.eventId,
            workspace_id: h.workspace_id,
            tenant_id: e.tenantId,
            event_type: e.eventType,
            body,
            state: "pending" as const,
            attempts: 0,
            next_attempt_at: now,
            locked_until: mine.has(h.webhook_id) ? until : null,
            lease: mine.has(h.webhook_id) ? lease : null,
            created_at: now,
          })),
        )
        .onConflict((oc) => oc.columns(["webhook_id", "event_id"]).doNothing())
        .returning("webhook_id")
        .execute();
      const fresh = new Set(inserted.map((r) => r.webhook_id));
      return hooks
        .filter((h) => fresh.has(h.webhook_id) && mine.has(h.webhook_id))
        .map((h) => ({
          webhook_id: h.webhook_id,
          event_id: e.eventId,
          workspace_id: h.workspace_id,
          event_type: e.eventType,
          body,
          attempts: 0,
          first_attempt_at: null,
          retry_delay_ms: null,
          lease,
          target: { url: h.url, secret: h.secret, isActive: true },
        }));
    });
  } finally {
    // Slots go back for rows not queued now (a redelivered entry) or if the transaction failed.
    const taken = new Set(leased.map((l) => l.webhook_id));
    for (const id of reserved) if (!taken.has(id)) dispatcher.release(id);
  }
  for (const row of leased) dispatcher.run(row);
  return leased.length;
}

/** Follows the feed from its first entry; an entry is acknowledged once its deliveries are queued. */
export function webhookIntake(ctx: RealtimeContext, bus: Bus, dispatcher: Dispatcher): DurableConsumer {
  return new DurableConsumer({
    bus,
    stream: feedStreamName(bus.prefix),
    durable: WEBHOOKS_DURABLE,
    filterSubject: allFeedSubjects(bus.prefix),
    logger: ctx.logger,
    keyOf: workspaceKey,
    concurrency: 32,
    isPoison: (err) => err instanceof ZodError || err instanceof SyntaxError,
    handle: async (msg) => void (await enqueue(ctx, dispatcher, FeedEvent.parse(msg.json()))),
  });
}
