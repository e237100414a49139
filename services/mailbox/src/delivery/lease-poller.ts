import { sql } from "kysely";
import type { MailboxContext } from "../context.ts";

/** How long a leased row is its replica's, renewed while it is worked on (a tarpit answers just often enough). */
export const LEASE = sql.raw("interval '30 minutes'");
const RENEW_EVERY_MS = 5 * 60_000;

/** What a queue of due rows does with them (see LeasePoller). */
export interface LeasedWork<Row> {
  /** Up to `free` rows due now, leased to this replica (a token, and their next look pushed past any try). */
  lease(free: number): Promise<Row[]>;
  /** Gives a row leased just before stopping back untouched, due at once. */
  release(row: Row): Promise<void>;
  /** Pushes the row's lease on while it is worked on. */
  renew(row: Row): Promise<void>;
  /** Works on one row; what it throws is only logged (the row comes back when its lease ends). */
  work(row: Row): Promise<void>;
  /** What names the row in a log line. */
  about(row: Row): Record<string, unknown>;
}

/**
 * Polls a table of due rows every `pollMs` and works on each on its own, at most `inFlight`
 * at a time: a row is leased before it is worked on, so replicas share the table and a crash
 * mid-try only delays that row.
 */
export class LeasePoller<Row> {
  private timer?: NodeJS.Timeout;
  private readonly working = new Set<Promise<void>>();
  private leasing = false;
  private ticking: Promise<void> = Promise.resolve();
  private stopped = false;
  private lastFailureLog = 0;

  constructor(
    private readonly ctx: MailboxContext,
    private readonly o: { what: string; pollMs: number; inFlight: number },
    private readonly rows: LeasedWork<Row>,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (!this.leasing) this.ticking = this.tick();
    }, this.o.pollMs);
  }

  /** Takes no more rows; waits a little for those being worked on (their leases cover the rest). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    const wait = (p: Promise<unknown>) => Promise.race([p, new Promise((r) => setTimeout(r, 5_000).unref())]);
    await wait(this.ticking);
    await wait(Promise.all([...this.working]));
  }

  private async tick(): Promise<void> {
    const free = this.o.inFlight - this.working.size;
    if (this.stopped || this.leasing || free <= 0) return;
    this.leasing = true;
    try {
      const due = await this.rows.lease(free);
      if (this.stopped) {
        // Stopped while leasing: hand the rows back at once rather than hold them for the lease.
        for (const row of due) await this.rows.release(row);
        return;
      }
      for (const row of due) {
        const renew = setInterval(() => void this.rows.renew(row).catch(() => undefined), RENEW_EVERY_MS);
        const p: Promise<void> = this.rows
          .work(row)
          .catch((err: unknown) => this.ctx.logger.warn({ err, ...this.rows.about(row) }, `${this.o.what}: a try failed; it comes back when its lease ends`))
          .finally(() => {
            clearInterval(renew);
            this.working.delete(p);
          });
        this.working.add(p);
      }
    } catch (err) {
      // The database is down, say: said once in a while, not every second.
      if (Date.now() - this.lastFailureLog > 30_000) {
        this.lastFailureLog = Date.now();
        this.ctx.logger.warn({ err }, `${this.o.what}: cannot read the queue; trying again shortly`);
      }
    } finally {
      this.leasing = false;
    }
  }
}
