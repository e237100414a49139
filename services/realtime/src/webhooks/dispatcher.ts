import { randomUUID } from "node:crypto";
import { withLogContext } from "@mam/runtime/log-context.ts";
import type { RealtimeContext } from "../context.ts";
import { afterFailure, type RetryPolicy } from "./backoff.ts";
import { type LaneRef, Lanes } from "./lanes.ts";
import { cancelDelivery, type Due, handBack, type Leased, leaseDue, renewLeases, targetOf } from "./queue.ts";
import { recordOutcome } from "./record.ts";
import type { WebhookSender } from "./sender.ts";
import { signedHeaders } from "./signing.ts";

const keyOf = (r: { webhook_id: string; event_id: string }) => `${r.webhook_id} ${r.event_id}`;
/**
 * What a row costs held in memory: its body's UTF-8 bytes, as the poll measures rows in the
 * database (octet_length) and the intake measures new ones: what a row adds when admitted must
 * be what it takes away when dropped, or the held bytes drift and their cap stops holding.
 */
export const bytesOf = (r: { body: string }) => Buffer.byteLength(r.body);

/** Rows one webhook may hold on a replica, per request it may have in flight: its next ones wait here, not in a poll. */
const AHEAD_PER_SLOT = 16;
/** How long an attempt that failed on our side (the database, say) waits before it is tried again. */
const OWN_FAILURE_RETRY_MS = 5_000;
/** Bodies held by one replica, waiting or in flight (a feed entry's bodies may reach FEED_BODY_MAX_BYTES each). */
const HELD_BYTES_MAX = 64 * 1024 * 1024;
/** At shutdown, how long attempts in flight may go on before they are cut (and recorded for a retry). */
const STOP_WAIT_MS = 5_000;

/**
 * Runs delivery attempts. Rows are leased to this replica (lease = its token, locked_until
 * renewed while it holds them) before they wait in its lanes: what the intake queues, and
 * what a poll finds due (a retry's time come, or a lease run out: a replica gone). Replicas
 * never attempt one row together, and every outcome is written under the lease. In flight
 * at most WEBHOOK_MAX_IN_FLIGHT, WEBHOOK_MAX_IN_FLIGHT_PER_TENANT per tenant and
 * WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT per webhook: a slow endpoint holds its own slots only (a
 * tenant's many slow endpoints, its share), and its other rows wait while everyone else's go.
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
    const perTenant = cfg.WEBHOOK_MAX_IN_FLIGHT_PER_TENANT;
    this.lanes = new Lanes<Leased>(
      {
        perEndpoint,
        perTenant,
        global: cfg.WEBHOOK_MAX_IN_FLIGHT,
        aheadPerEndpoint: perEndpoint * AHEAD_PER_SLOT,
        heldPerTenant: perTenant * AHEAD_PER_SLOT,
        heldMax: cfg.WEBHOOK_MAX_IN_FLIGHT * AHEAD_PER_SLOT,
        heldBytesMax: HELD_BYTES_MAX,
      },
      bytesOf,
    );
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
    await handBack(this.ctx.db, this.lease, waiting, this.ctx.clock()).catch((err: unknown) =>
      this.sayOnce(err, "webhook deliveries could not be handed back; their lease will run out"),
    );
  }

  /** Room for one more row of this webhook (of this tenant), of this many bytes, here (an intake queuing it leases it to this replica then). */
  admit(ref: LaneRef, bytes: number): boolean {
    if (!this.stopped && this.lanes.admit(ref, bytes)) return true;
    // Refused in a poll: rows wait that the next look (when a line has room) should find.
    this.backlog = true;
    return false;
  }

  /** Rows were queued that no replica holds yet: looked for when a line has room again. */
  queuedForLater(): void {
    this.backlog = true;
  }

  /** An admitted row that was not queued after all (a redelivered entry, or its transaction failed). */
  drop(webhookId: string, bytes: number): void {
    this.lanes.drop(webhookId, bytes);
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
      // A delivery is a webhook and an event: every line of the attempt names both.
      const p: Promise<void> = withLogContext({ webhookId: row.webhook_id, eventId: row.event_id }, () =>
        this.attempt(row, answer).catch((err: unknown) => this.ownFailure(row, err)),
      ).finally(() => {
        answer();
        this.working.delete(p);
        this.held.delete(keyOf(row));
        this.lanes.drop(row.webhook_id, bytesOf(row));
        this.pump();
        // Rows may wait for this webhook's line, which has room again (others' are looked for on the interval).
        if (this.backlog && !this.lanes.isBusy(row.webhook_id)) this.pollSoon();
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

  /** Leases due rows, as many as there is room for, none of a webhook whose lane (or whose tenant's share) is half full or more. */
  private async poll(): Promise<void> {
    const room = Math.min(this.lanes.room(), 1_000);
    if (room <= 0) return;
    const skip = this.lanes.busy();
    const skipTenants = this.lanes.busyTenants();
    // Rows of the webhooks left alone may wait: looked for again when their lines have room.
    this.backlog = skip.length > 0 || skipTenants.length > 0;
    const now = this.ctx.clock();
    const until = new Date(now.getTime() + this.leaseMs);
    const admitted: Due[] = [];
    const choose = (due: Due[]) => due.filter((r) => !this.held.has(keyOf(r)) && this.admit(r, r.bytes) && admitted.push(r) > 0);
    let leased: Leased[] = [];
    try {
      const r = await leaseDue(this.ctx.db, { lease: this.lease, now, until, limit: room, skip, skipTenants, choose });
      leased = r.leased.map((row) => ({ ...row, leased_until: until.getTime() }));
      // As many as came may not be all there is: look again when room frees.
      if (r.scanned >= room) this.backlog = true;
    } catch (err) {
      this.sayOnce(err, "webhook deliveries: cannot read the queue; trying again shortly");
    }
    // Room taken for a row that did not come back (none, unless the transaction failed) is freed.
    const taken = new Set(leased.map(keyOf));
    for (const a of admitted) if (!taken.has(keyOf(a))) this.drop(a.webhook_id, a.bytes);
    this.hold(leased);
  }

  /**
   * Keeps the lease on every row held here (and only those: one this replica let go of runs
   * out). A row found no longer ours (its lease ran out while renewals failed, and another
   * replica took it) keeps its old time, and is not attempted here.
   */
  private async renew(): Promise<void> {
    const until = this.ctx.clock().getTime() + this.leaseMs;
    const rows = [...this.held.values()];
    try {
      const kept = await renewLeases(this.ctx.db, this.lease, rows, new Date(until));
      for (const row of rows) if (kept.has(keyOf(row))) row.leased_until = until;
    } catch (err) {
      this.sayOnce(err, "webhook deliveries: cannot renew the leases held; trying again shortly");
    }
  }

  /** Whether this row's lease lasts until an attempt starting now is surely over (renewed here if not). */
  private async leaseCovers(row: Leased): Promise<boolean> {
    const now = this.ctx.clock().getTime();
    if (row.leased_until >= now + this.ctx.cfg.WEBHOOK_TIMEOUT_MS + 1_000) return true;
    const until = now + this.leaseMs;
    if (!(await renewLeases(this.ctx.db, this.lease, [row], new Date(until))).has(keyOf(row))) return false;
    row.leased_until = until;
    return true;
  }

  private async attempt(row: Leased, answered: () => void): Promise<void> {
    // Where and how to send, as the webhook is now: a row may have waited its turn while it was paused, moved or deleted.
    const target = await targetOf(this.ctx.db, row);
    if (!target?.isActive) {
      await cancelDelivery(this.ctx.db, this.lease, row, this.ctx.clock());
      return void this.ctx.logger.info(
        { webhookId: row.webhook_id, eventId: row.event_id, webhook: target ? "inactive" : "deleted" },
        "webhook delivery canceled",
      );
    }
    // Checked last before the request: no other replica may take the row (its lease run out) while this attempt can still be running.
    if (!(await this.leaseCovers(row))) {
      return void this.ctx.logger.info({ webhookId: row.webhook_id, eventId: row.event_id }, "webhook delivery no longer leased here; left to its holder");
    }
    const attempt = row.attempts + 1;
    const at = this.ctx.clock();
    const raw = Buffer.from(row.body, "utf8");
    const result = await this.sender.post(
      target.url,
      raw,
      signedHeaders(target.secret, raw, { eventId: row.event_id, eventType: row.event_type, attempt, at }),
    );
    answered();
    const ended = this.ctx.clock();
    const firstAttemptAt = row.first_attempt_at ?? at;
    const next = result.success ? undefined : afterFailure({ firstAttemptAt, startedAt: at, now: ended, prevDelayMs: row.retry_delay_ms }, this.policy);
    const outcome = { webhookId: row.webhook_id, eventId: row.event_id, eventType: row.event_type, lease: this.lease, attemptId: this.ctx.newId() };
    const recorded = await recordOutcome(this.ctx.db, { ...outcome, attempt, firstAttemptAt, at, now: ended, result, next });
    const said = { webhookId: row.webhook_id, eventId: row.event_id, attempt, statusCode: result.statusCode, ms: result.latencyMs, error: result.error };
    const log = this.ctx.logger;
    if (!recorded) log.info(said, "webhook attempt made for a delivery no longer ours (webhook deleted, or lease lost); not recorded");
    else if (next?.kind === "give-up") log.warn(said, "webhook delivery given up: its retry window is over; the webhook is failing");
    else if (next) log.info({ ...said, nextAttemptAt: next.at }, "webhook attempt failed; will retry");
    else log.debug(said, "webhook delivered");
  }

  /** The attempt failed on our side (the database, say): tried again shortly, or by whoever finds the lease run out. */
  private async ownFailure(row: Leased, err: unknown): Promise<void> {
    this.sayOnce(err, "webhook attempt could not be made or recorded; will retry");
    await handBack(this.ctx.db, this.lease, [row], new Date(this.ctx.clock().getTime() + OWN_FAILURE_RETRY_MS)).catch(() => undefined);
  }

  /** A database outage fails every poll: said once in a while, not every second. */
  private sayOnce(err: unknown, what: string): void {
    if (Date.now() - this.lastFailureLog < 30_000) return;
    this.lastFailureLog = Date.now();
    this.ctx.logger.warn({ err }, what);
  }
}
