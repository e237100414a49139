import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { RealtimeContext } from "../context.ts";
import { afterFailure, type RetryPolicy } from "./backoff.ts";
import { Lanes } from "./lanes.ts";
import { recordOutcome } from "./record.ts";
import type { WebhookSender } from "./sender.ts";
import { signedHeaders } from "./signing.ts";

/** Where and how to send: read when the attempt starts, so a changed URL or a paused webhook is seen. */
export interface Target {
  url: string;
  secret: string;
  isActive: boolean;
}

/** A queue row this replica holds the lease of. */
export interface Leased {
  webhook_id: string;
  event_id: string;
  workspace_id: string;
  event_type: string;
  body: string;
  attempts: number;
  first_attempt_at: Date | null;
  retry_delay_ms: number | null;
  /** When its lease runs out unless renewed (ms since the epoch). */
  leased_until: number;
  /** What the intake already read of the webhook: a first attempt needs no other query. */
  target?: Target;
}

const keyOf = (r: { webhook_id: string; event_id: string }) => `${r.webhook_id} ${r.event_id}`;

/** Rows one webhook may hold on a replica, per request it may have in flight: its next ones wait here, not in a poll. */
const AHEAD_PER_SLOT = 16;
/** How long an attempt that failed on our side (the database, say) waits before it is tried again. */
const OWN_FAILURE_RETRY_MS = 5_000;
/** At shutdown, how long attempts in flight may go on before they are cut (and recorded for a retry). */
const STOP_WAIT_MS = 5_000;

/**
 * Runs delivery attempts. Rows are leased to this replica (lease = its token, locked_until
 * renewed while it holds them) before they wait in its lanes: what the intake queues, and
 * what a poll finds due (a retry's time come, or a lease run out: a replica gone). Replicas
 * never attempt one row together, and every outcome is written under the lease. In flight
 * at most WEBHOOK_MAX_IN_FLIGHT, and WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT per webhook: a slow
 * endpoint holds its own slots only, and its other rows wait while everyone else's go.
 */
export class Dispatcher {
  /** This process's lease on the rows it holds. */
  readonly lease = randomUUID();
  readonly leaseMs: number;
  private readonly lanes: Lanes<Leased>;
  private readonly policy: RetryPolicy;
  private readonly working = new Set<Promise<void>>();
  /** Every row held here (waiting or in flight), by webhook and event: what the renewal keeps. */
  private readonly held = new Map<string, Leased>();
  private timers: NodeJS.Timeout[] = [];
  private polling?: Promise<void>;
  private stopped = false;
  /** Rows may wait in the queue that this replica had no room for: it looks again when room frees. */
  private backlog = false;
  /** Until when every row this replica holds is surely its own (the last renewal that succeeded). */
  private renewedUntil = 0;
  private lastFailureLog = 0;

  constructor(
    private readonly ctx: RealtimeContext,
    private readonly sender: WebhookSender,
  ) {
    const { cfg } = ctx;
    // Longer than any attempt can take, and renewed while held: a lease runs out only when its holder is gone.
    this.leaseMs = cfg.WEBHOOK_TIMEOUT_MS + 15_000;
    this.policy = { baseMs: cfg.WEBHOOK_RETRY_BASE_MS, maxDelayMs: cfg.WEBHOOK_RETRY_MAX_DELAY_MS, windowMs: cfg.WEBHOOK_RETRY_WINDOW_S * 1000 };
    const perEndpoint = cfg.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT;
    this.lanes = new Lanes({
      perEndpoint,
      global: cfg.WEBHOOK_MAX_IN_FLIGHT,
      aheadPerEndpoint: perEndpoint * AHEAD_PER_SLOT,
      heldMax: cfg.WEBHOOK_MAX_IN_FLIGHT * AHEAD_PER_SLOT,
    });
  }

  start(): void {
    this.timers = [setInterval(() => this.pollSoon(), this.ctx.cfg.WEBHOOK_POLL_MS), setInterval(() => void this.renew(), this.leaseMs / 4)];
    this.pollSoon();
  }

  /**
   * Takes no more rows and lets the attempts in flight finish, for a while: then their
   * connections are cut, and each is recorded as failed and retried. What still waits here is
   * handed back at once, for another replica (or the next start) to take.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    await this.polling;
    const waiting = this.lanes.takeWaiting();
    for (const row of waiting) this.held.delete(keyOf(row));
    const attempts = () => Promise.all([...this.working]);
    await Promise.race([attempts(), new Promise((r) => setTimeout(r, STOP_WAIT_MS).unref())]);
    this.sender.close();
    await Promise.race([attempts(), new Promise((r) => setTimeout(r, 2_000).unref())]);
    if (waiting.length)
      await this.handBack(waiting).catch((err: unknown) => this.sayOnce(err, "webhook deliveries could not be handed back; their lease will run out"));
  }

  /** Room for one more row of this webhook here (an intake queuing it leases it to this replica then). */
  admit(webhookId: string): boolean {
    if (!this.stopped && this.lanes.admit(webhookId)) return true;
    this.backlog = true;
    return false;
  }

  /** An admitted row that was not queued after all (a redelivered entry, or its transaction failed). */
  drop(webhookId: string): void {
    this.lanes.drop(webhookId);
  }

  /** Admitted rows, leased and committed: attempted in turn. */
  hold(rows: Leased[]): void {
    for (const row of rows) {
      this.held.set(keyOf(row), row);
      this.lanes.hold(row);
    }
    this.pump();
  }

  /** Starts what may run now. */
  private pump(): void {
    if (this.stopped) return;
    for (const row of this.lanes.next()) {
      let answered = false;
      // The endpoint's slot is free once its request is over; the outcome is written meanwhile.
      const answer = () => {
        if (answered) return;
        answered = true;
        this.lanes.answered(row.webhook_id);
        this.pump();
      };
      const p: Promise<void> = this.attempt(row, answer)
        .catch((err: unknown) => this.ownFailure(row, err))
        .finally(() => {
          answer();
          this.working.delete(p);
          this.held.delete(keyOf(row));
          this.lanes.drop(row.webhook_id);
          this.pump();
          if (this.backlog) this.pollSoon();
        });
      this.working.add(p);
    }
  }

  private pollSoon(): void {
    if (this.polling || this.stopped) return;
    this.polling = this.poll().finally(() => {
      this.polling = undefined;
    });
  }

  /** Leases due rows, as many as there is room for, none of a webhook whose lane is full. */
  private async poll(): Promise<void> {
    const room = this.lanes.room();
    if (room <= 0) return;
    this.backlog = false;
    const now = this.ctx.clock();
    const admitted: string[] = [];
    let leased: Leased[] = [];
    try {
      leased = await this.ctx.db.transaction().execute(async (tx) => {
        const due = await sql<{ webhook_id: string; event_id: string }>`
          select webhook_id, event_id from webhook_deliveries
          where state = 'pending' and next_attempt_at <= ${now} and (locked_until is null or locked_until <= ${now})
            and not (webhook_id = any(${this.lanes.full()}::uuid[]))
          order by next_attempt_at
          limit ${Math.min(room, 1_000)}
          for update skip locked`.execute(tx);
        // As many as came may not be all there is: look again when room frees.
        if (due.rows.length >= Math.min(room, 1_000)) this.backlog = true;
        const chosen = due.rows.filter((r) => !this.held.has(keyOf(r)) && this.admit(r.webhook_id) && admitted.push(r.webhook_id) > 0);
        if (!chosen.length) return [];
        const until = now.getTime() + this.leaseMs;
        const rows = await sql<Omit<Leased, "leased_until">>`
          update webhook_deliveries d set locked_until = ${new Date(until)}, lease = ${this.lease}
          from unnest(${chosen.map((c) => c.webhook_id)}::uuid[], ${chosen.map((c) => c.event_id)}::text[]) as c(webhook_id, event_id)
          where d.webhook_id = c.webhook_id and d.event_id = c.event_id
          returning d.webhook_id, d.event_id, d.workspace_id, d.event_type, d.body, d.attempts, d.first_attempt_at, d.retry_delay_ms`.execute(tx);
        return rows.rows.map((r) => ({ ...r, leased_until: until }));
      });
    } catch (err) {
      leased = [];
      this.sayOnce(err, "webhook deliveries: cannot read the queue; trying again shortly");
    }
    // Room taken for a row that did not come back (none, unless the transaction failed) is freed.
    const taken = leased.map((r) => r.webhook_id);
    for (const id of admitted) {
      const i = taken.indexOf(id);
      if (i >= 0) taken.splice(i, 1);
      else this.drop(id);
    }
    this.hold(leased);
  }

  /** Keeps the lease on every row held here (and only those: one this replica let go of runs out). */
  private async renew(): Promise<void> {
    const until = this.ctx.clock().getTime() + this.leaseMs;
    const rows = [...this.held.values()];
    try {
      if (rows.length) {
        await sql`
          update webhook_deliveries d set locked_until = ${new Date(until)}
          from unnest(${rows.map((r) => r.webhook_id)}::uuid[], ${rows.map((r) => r.event_id)}::text[]) as c(webhook_id, event_id)
          where d.webhook_id = c.webhook_id and d.event_id = c.event_id and d.lease = ${this.lease}`.execute(this.ctx.db);
      }
      this.renewedUntil = until;
    } catch (err) {
      this.sayOnce(err, "webhook deliveries: cannot renew the leases held; trying again shortly");
    }
  }

  private async attempt(row: Leased, answered: () => void): Promise<void> {
    // A row whose lease may have run out (renewals failing: the database away) is checked first: it may be another replica's now.
    const covered = Math.max(row.leased_until, this.renewedUntil);
    if (this.ctx.clock().getTime() + this.ctx.cfg.WEBHOOK_TIMEOUT_MS > covered && !(await this.stillOurs(row))) return;
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
    answered();
    const now = this.ctx.clock();
    const firstAttemptAt = row.first_attempt_at ?? at;
    const next = result.success ? undefined : afterFailure({ firstAttemptAt, startedAt: at, now, prevDelayMs: row.retry_delay_ms }, this.policy);
    const outcome = { webhookId: row.webhook_id, eventId: row.event_id, eventType: row.event_type, lease: this.lease, attemptId: this.ctx.newId() };
    const recorded = await recordOutcome(this.ctx.db, { ...outcome, attempt, firstAttemptAt, at, now, result, next });
    const said = { webhookId: row.webhook_id, eventId: row.event_id, attempt, statusCode: result.statusCode, ms: result.latencyMs, error: result.error };
    const log = this.ctx.logger;
    if (!recorded) log.info(said, "webhook attempt made for a delivery no longer ours (webhook deleted, or lease lost); not recorded");
    else if (next?.kind === "give-up") log.warn(said, "webhook delivery given up: its retry window is over; the webhook is failing");
    else if (next) log.info({ ...said, nextAttemptAt: next.at }, "webhook attempt failed; will retry");
    else log.debug(said, "webhook delivered");
  }

  private async stillOurs(row: Leased): Promise<boolean> {
    const r = await this.ctx.db
      .updateTable("webhook_deliveries")
      .set({ locked_until: new Date(this.ctx.clock().getTime() + this.leaseMs) })
      .where("webhook_id", "=", row.webhook_id)
      .where("event_id", "=", row.event_id)
      .where("lease", "=", this.lease)
      .executeTakeFirst();
    return r.numUpdatedRows > 0n;
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
      .where("lease", "=", this.lease)
      .execute();
    this.ctx.logger.info({ webhookId: row.webhook_id, eventId: row.event_id, why }, "webhook delivery canceled");
  }

  /** The attempt failed on our side (the database, say): tried again shortly, or by whoever finds the lease run out. */
  private async ownFailure(row: Leased, err: unknown): Promise<void> {
    this.sayOnce(err, "webhook attempt could not be made or recorded; will retry");
    await this.handBack([row], OWN_FAILURE_RETRY_MS).catch(() => undefined);
  }

  /** Rows this replica will not attempt after all: free for any replica (after `delayMs`). */
  private async handBack(rows: Leased[], delayMs = 0): Promise<void> {
    await sql`
      update webhook_deliveries d set locked_until = null, lease = null, next_attempt_at = greatest(d.next_attempt_at, ${new Date(this.ctx.clock().getTime() + delayMs)})
      from unnest(${rows.map((r) => r.webhook_id)}::uuid[], ${rows.map((r) => r.event_id)}::text[]) as c(webhook_id, event_id)
      where d.webhook_id = c.webhook_id and d.event_id = c.event_id and d.lease = ${this.lease}`.execute(this.ctx.db);
  }

  /** A database outage fails every poll: said once in a while, not every second. */
  private sayOnce(err: unknown, what: string): void {
    if (Date.now() - this.lastFailureLog < 30_000) return;
    this.lastFailureLog = Date.now();
    this.ctx.logger.warn({ err }, what);
  }
}
