import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { RealtimeContext } from "../context.ts";
import { afterFailure, type RetryPolicy } from "./backoff.ts";
import type { AttemptResult, WebhookSender } from "./sender.ts";
import { signedHeaders } from "./signing.ts";

/** Where and how to send: read when the attempt starts, so a changed URL or a paused webhook is seen. */
export interface Target {
  url: string;
  secret: string;
  isActive: boolean;
}

/** A queue row this replica holds the lease of, for one attempt. */
export interface Leased {
  webhook_id: string;
  event_id: string;
  workspace_id: string;
  event_type: string;
  body: string;
  attempts: number;
  first_attempt_at: Date | null;
  retry_delay_ms: number | null;
  lease: string;
  /** What the intake already read of the webhook: a first attempt needs no other query. */
  target?: Target;
}

/** Rows looked at per poll, for each free slot (some belong to webhooks at their cap). */
const SCAN_PER_SLOT = 4;
/** How long an attempt that failed on our side (the database, say) waits before it is tried again. */
const OWN_FAILURE_RETRY_MS = 5_000;
/** At shutdown, how long attempts in flight may go on before they are cut (and recorded for a retry). */
const STOP_WAIT_MS = 5_000;

/**
 * Runs delivery attempts: at once for what the intake leased, and for rows whose retry is due
 * or whose lease ran out (a crashed replica's) found by a poll every replica makes. A row is
 * leased (locked_until, lease) before its attempt, so replicas never attempt one together;
 * every outcome is written under that lease. In flight at most WEBHOOK_MAX_IN_FLIGHT, and
 * WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT per webhook: a slow endpoint holds its own slots only,
 * and its other rows wait in the queue while everyone else's go.
 */
export class Dispatcher {
  private readonly perWebhook = new Map<string, number>();
  private total = 0;
  private readonly working = new Set<Promise<void>>();
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private stopped = false;
  /** Rows wait that this replica could not take when it saw them: it looks again when a slot frees. */
  private backlog = false;
  private lastFailureLog = 0;
  readonly leaseMs: number;
  private readonly policy: RetryPolicy;

  constructor(
    private readonly ctx: RealtimeContext,
    private readonly sender: WebhookSender,
  ) {
    const { cfg } = ctx;
    // Longer than any attempt can take: a lease runs out only when its holder is gone.
    this.leaseMs = cfg.WEBHOOK_TIMEOUT_MS + 15_000;
    this.policy = { baseMs: cfg.WEBHOOK_RETRY_BASE_MS, maxDelayMs: cfg.WEBHOOK_RETRY_MAX_DELAY_MS, windowMs: cfg.WEBHOOK_RETRY_WINDOW_S * 1000 };
  }

  start(): void {
    this.timer = setInterval(() => this.pollSoon(), this.ctx.cfg.WEBHOOK_POLL_MS);
    this.pollSoon();
  }

  /**
   * Takes no more rows and lets the attempts in flight finish, for a while: then their
   * connections are cut, and each is recorded as failed and retried (by any replica). One
   * that cannot even be recorded keeps its lease until it runs out.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.polling;
    const attempts = () => Promise.all([...this.working]);
    await Promise.race([attempts(), new Promise((r) => setTimeout(r, STOP_WAIT_MS).unref())]);
    this.sender.close();
    await Promise.race([attempts(), new Promise((r) => setTimeout(r, 2_000).unref())]);
  }

  /** A slot for one attempt to this webhook, if both caps allow. */
  reserve(webhookId: string): boolean {
    const { cfg } = this.ctx;
    const n = this.perWebhook.get(webhookId) ?? 0;
    if (this.stopped || this.total >= cfg.WEBHOOK_MAX_IN_FLIGHT || n >= cfg.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT) {
      this.backlog = true;
      return false;
    }
    this.total++;
    this.perWebhook.set(webhookId, n + 1);
    return true;
  }

  release(webhookId: string): void {
    this.total--;
    const n = (this.perWebhook.get(webhookId) ?? 1) - 1;
    if (n > 0) this.perWebhook.set(webhookId, n);
    else this.perWebhook.delete(webhookId);
    if (this.backlog) this.pollSoon();
  }

  /** Attempts a row this replica leased, in a slot reserved for it. */
  run(row: Leased): void {
    const p: Promise<void> = this.attempt(row)
      .catch((err: unknown) => this.ownFailure(row, err))
      .finally(() => {
        this.working.delete(p);
        this.release(row.webhook_id);
      });
    this.working.add(p);
  }

  private pollSoon(): void {
    if (this.polling || this.stopped) return;
    this.polling = this.poll().finally(() => {
      this.polling = undefined;
    });
  }

  /** Leases due rows, as many as there are free slots, none of a webhook at its cap. */
  private async poll(): Promise<void> {
    const { cfg } = this.ctx;
    const free = cfg.WEBHOOK_MAX_IN_FLIGHT - this.total;
    if (free <= 0) return;
    this.backlog = false;
    const now = this.ctx.clock();
    const full = [...this.perWebhook].filter(([, n]) => n >= cfg.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT).map(([id]) => id);
    const lease = randomUUID();
    const reserved: string[] = [];
    let leased: Leased[] = [];
    try {
      leased = await this.ctx.db.transaction().execute(async (tx) => {
        const due = await sql<{ webhook_id: string; event_id: string }>`
          select webhook_id, event_id from webhook_deliveries
          where state = 'pending' and next_attempt_at <= ${now} and (locked_until is null or locked_until <= ${now})
            and not (webhook_id = any(${full}::uuid[]))
          order by next_attempt_at
          limit ${Math.max(50, free * SCAN_PER_SLOT)}
          for update skip locked`.execute(tx);
        // The scan may hold more than can go now: the rest stays, unleased, for the next look.
        if (due.rows.length >= free) this.backlog = true;
        const chosen = due.rows.filter((r) => this.reserve(r.webhook_id) && reserved.push(r.webhook_id));
        if (!chosen.length) return [];
        const rows = await sql<Omit<Leased, "lease">>`
          update webhook_deliveries d set locked_until = ${new Date(now.getTime() + this.leaseMs)}, lease = ${lease}
          from unnest(${chosen.map((c) => c.webhook_id)}::uuid[], ${chosen.map((c) => c.event_id)}::text[]) as c(webhook_id, event_id)
          where d.webhook_id = c.webhook_id and d.event_id = c.event_id
          returning d.webhook_id, d.event_id, d.workspace_id, d.event_type, d.body, d.attempts, d.first_attempt_at, d.retry_delay_ms`.execute(tx);
        return rows.rows.map((r) => ({ ...r, lease }));
      });
    } catch (err) {
      leased = [];
      this.sayOnce(err, "webhook deliveries: cannot read the queue; trying again shortly");
    }
    // A slot reserved for a row that did not come back (none, unless the transaction failed) is freed.
    const taken = leased.map((r) => r.webhook_id);
    for (const id of reserved) {
      const i = taken.indexOf(id);
      if (i >= 0) taken.splice(i, 1);
      else this.release(id);
    }
    for (const row of leased) this.run(row);
  }

  private async attempt(row: Leased): Promise<void> {
    const target = row.target ?? (await this.targetOf(row));
    if (!target?.isActive) return this.cancel(row, target ? "webhook inactive" : "webhook deleted");
    const attempt = row.attempts + 1;
    const at = this.ctx.clock();
    const raw = Buffer.from(row.body, "utf8");
    const result = await this.sender.post(
      target.url,
      raw,
      signedHeaders(target.secret, raw, { eventId: row.event_id, eventType: row.event_type, attempt, at }),
    );
    await this.record(row, attempt, at, result);
  }

  private async targetOf(row: Leased): Promise<Target | undefined> {
    const t = await this.ctx.db
      .selectFrom("webhooks as w")
      .innerJoin("webhook_secrets as s", (j) => j.onRef("s.workspace_id", "=", "w.workspace_id").onRef("s.webhook_id", "=", "w.webhook_id"))
      .select(["w.url", "w.is_active", "s.secret"])
      .where("w.workspace_id", "=", row.workspace_id)
      .where("w.webhook_id", "=", row.webhook_id)
      .executeTakeFirst();
    return t && { url: t.url, secret: t.secret, isActive: t.is_active };
  }

  /** A paused or deleted webhook gets no attempt: its pending delivery ends here. */
  private async cancel(row: Leased, why: string): Promise<void> {
    await this.ctx.db
      .updateTable("webhook_deliveries")
      .set({ state: "canceled", body: null, completed_at: this.ctx.clock(), locked_until: null, lease: null })
      .where("webhook_id", "=", row.webhook_id)
      .where("event_id", "=", row.event_id)
      .where("lease", "=", row.lease)
      .execute();
    this.ctx.logger.info({ webhookId: row.webhook_id, eventId: row.event_id, why }, "webhook delivery canceled");
  }

  /** The attempt's outcome, its log row and the webhook's health, together and under the lease. */
  private async record(row: Leased, attempt: number, at: Date, result: AttemptResult): Promise<void> {
    const { ctx } = this;
    const now = ctx.clock();
    const first = row.first_attempt_at ?? at;
    const next = result.success ? undefined : afterFailure({ firstAttemptAt: first, startedAt: at, now, prevDelayMs: row.retry_delay_ms }, this.policy);
    const gaveUp = next?.kind === "give-up";
    const done = { state: result.success ? ("delivered" as const) : ("failed" as const), body: null, completed_at: now };
    const recorded = await ctx.db.transaction().execute(async (tx) => {
      const updated = await tx
        .updateTable("webhook_deliveries")
        .set({
          attempts: attempt,
          first_attempt_at: first,
          locked_until: null,
          lease: null,
          ...(next?.kind === "retry" ? { next_attempt_at: next.at, retry_delay_ms: next.delayMs } : done),
        })
        .where("webhook_id", "=", row.webhook_id)
        .where("event_id", "=", row.event_id)
        .where("lease", "=", row.lease)
        .executeTakeFirst();
      // The webhook was deleted meanwhile (its queue and log with it): nothing of it to write.
      if (!updated.numUpdatedRows) return false;
      await tx
        .insertInto("webhook_attempts")
        .values({
          workspace_id: row.workspace_id,
          webhook_id: row.webhook_id,
          attempt_id: ctx.newId(),
          event_id: row.event_id,
          event_type: row.event_type,
          attempt,
          attempted_at: at,
          status_code: result.statusCode,
          latency_ms: result.latencyMs,
          success: result.success,
          error: result.error,
          next_attempt_at: next?.kind === "retry" ? next.at : null,
        })
        .execute();
      if (result.success || gaveUp) {
        const health = result.success ? { failing_since: null, last_delivery_at: now } : { failing_since: now, last_delivery_at: null };
        await tx
          .insertInto("webhook_health")
          .values({ workspace_id: row.workspace_id, webhook_id: row.webhook_id, ...health })
          .onConflict((oc) =>
            oc
              .columns(["workspace_id", "webhook_id"])
              .doUpdateSet(
                result.success
                  ? { failing_since: null, last_delivery_at: now }
                  : { failing_since: sql<Date>`coalesce(webhook_health.failing_since, excluded.failing_since)` },
              ),
          )
          .execute();
      }
      return true;
    });
    const said = { webhookId: row.webhook_id, eventId: row.event_id, attempt, statusCode: result.statusCode, ms: result.latencyMs, error: result.error };
    if (!recorded) ctx.logger.info(said, "webhook attempt made for a webhook deleted meanwhile; not recorded");
    else if (gaveUp) ctx.logger.warn(said, "webhook delivery given up: its retry window is over; the webhook is failing");
    else if (!result.success) ctx.logger.info({ ...said, nextAttemptAt: next?.kind === "retry" ? next.at : null }, "webhook attempt failed; will retry");
    else ctx.logger.debug(said, "webhook delivered");
  }

  /** The attempt failed on our side (the database, say): tried again shortly, or by whoever finds the lease run out. */
  private async ownFailure(row: Leased, err: unknown): Promise<void> {
    this.sayOnce(err, "webhook attempt could not be made or recorded; will retry");
    await this.ctx.db
      .updateTable("webhook_deliveries")
      .set({ locked_until: null, lease: null, next_attempt_at: new Date(this.ctx.clock().getTime() + OWN_FAILURE_RETRY_MS) })
      .where("webhook_id", "=", row.webhook_id)
      .where("event_id", "=", row.event_id)
      .where("lease", "=", row.lease)
      .execute()
      .catch(() => undefined);
  }

  /** A database outage fails every poll: said once in a while, not every second. */
  private sayOnce(err: unknown, what: string): void {
    if (Date.now() - this.lastFailureLog < 30_000) return;
    this.lastFailureLog = Date.now();
    this.ctx.logger.warn({ err }, what);
  }
}
