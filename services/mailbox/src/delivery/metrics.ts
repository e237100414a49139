import { sql } from "kysely";
import { metricsOf, SOURCE_TIMEOUT_MS } from "@mam/runtime/metrics.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import type { MailboxContext } from "../context.ts";

export type DeliveryOutcome = "delivered" | "deferred" | "bounced";

const outcomes = () =>
  metricsOf("mailbox").counter(
    "mam_delivery_outcomes_total",
    "Recipients of sent mail by outcome: delivered (locally or to a server that said 250), deferred (a temporary refusal, tried again), bounced (refused for good, given up, or reported back)",
    ["outcome"],
  );

/** Counts `recipients` recipients with this outcome. */
export function countOutcome(outcome: DeliveryOutcome, recipients: number): void {
  if (recipients > 0) outcomes().inc({ outcome }, recipients);
}

/**
 * The outcome counters from zero (a dashboard shows 0, not nothing); the lag of the consumer
 * that makes first attempts (`durable`), and the retry queue's depth, read when scraped:
 * rows due now, waiting for their next try, and being tried by a replica (leased).
 */
export function watchDelivery(ctx: MailboxContext, b: Backbone<any>, durable: string): void {
  for (const outcome of ["delivered", "deferred", "bounced"] as const) outcomes().inc({ outcome }, 0);
  b.watchConsumerLag(b.stream, durable);
  b.watch(
    "mam_delivery_queue_depth",
    "Sent messages waiting in the retry queue: due now, scheduled for later, or being tried (leased)",
    ["state"],
    async () => {
      // Postgres drops the count when the scrape stops waiting for it, freeing the connection.
      const { rows } = await ctx.db.transaction().execute(async (tx) => {
        await sql`select set_config('statement_timeout', ${`${SOURCE_TIMEOUT_MS}ms`}, true)`.execute(tx);
        return sql<{ due: string; scheduled: string; leased: string }>`
          select count(*) filter (where next_try_at <= now()) as due,
                 count(*) filter (where next_try_at > now() and lease is null) as scheduled,
                 count(*) filter (where next_try_at > now() and lease is not null) as leased
          from delivery_queue`.execute(tx);
      });
      const r = rows[0]!;
      return [
        { labels: { state: "due" }, value: Number(r.due) },
        { labels: { state: "scheduled" }, value: Number(r.scheduled) },
        { labels: { state: "leased" }, value: Number(r.leased) },
      ];
    },
  );
}
