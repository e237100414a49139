import { setTimeout as sleep } from "node:timers/promises";
import type { Kysely } from "kysely";
import type { PubAck } from "@nats-io/jetstream";
import type { Bus } from "@mam/bus/connection.ts";
import { publishChained, publishEncoded } from "@mam/bus/events.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import { claimPending, envelopesOfRows, markPublished, prunePublished, tenantsWithPending, type EncodedEvent, type OutboxRow } from "./outbox.ts";

/** Publishes one row; with `afterId`, only if that event is the stream's last message. */
export type Publish = (bus: Bus, row: OutboxRow, afterId?: string) => Promise<PubAck>;

export interface RelayOptions {
  db: Kysely<any>;
  bus: Bus;
  logger: Logger;
  /** Namespace of the relay's per-tenant lock (the service's event context). */
  context: string;
  /** How an encoded event goes to the stream; tests put faults in here. */
  publish?: Publish;
  /** How often every tenant with waiting events is looked at (events of other replicas, a crashed relay, NATS back). */
  sweepMs?: number;
  /** Rows per publishing pass. */
  batch?: number;
  /** How long published rows are kept, for an operator to see what left and when. */
  retentionMs?: number;
  /** Tenants relayed at once by this process (each holds a database connection). */
  concurrency?: number;
}

interface TenantState {
  running: boolean;
  /** Callers waiting for a pass that begins after their commit. */
  waiting: (() => void)[];
  failures: number;
  retryAt: number;
}

type Pass = "busy" | "done" | "more";

const ENCODED_CACHE = 20_000;

const defaultPublish: Publish = (bus, row, afterId) => publishEncoded(bus, row.subject, row.envelope, row.event_id, afterId);

/**
 * Publishes what commands committed to their outbox, per tenant in commit order. A pass
 * is one transaction holding the tenant's relay lock (`pg_try_advisory_xact_lock`), so of
 * all replicas exactly one relays a tenant at a time; it publishes the oldest waiting rows
 * (see `publishInOrder`), then marks them published (with the sequence the stream gave
 * each) in the same transaction. Tenants are relayed in parallel. A relay that
 * dies mid-pass leaves its rows unmarked and its lock released (the server ends a session
 * idle in its transaction after 30 s, should the host vanish): the next pass, here or on
 * another replica, publishes them again from the first, and the stream drops the copies by
 * `Nats-Msg-Id` (its duplicate window is two minutes), so nothing is lost or reordered.
 */
export class OutboxRelay {
  private readonly tenants = new Map<string, TenantState>();
  /** Rows the stream took whose marking did not commit: marked next time, not sent again. */
  private readonly unmarked = new Map<number, number>();
  /** Envelopes this process just wrote, by event id, so a pass need not read them back. */
  private readonly encoded = new Map<string, string>();
  private readonly publish: Publish;
  private readonly batch: number;
  private slotsFree: number;
  private readonly slotWaiters: (() => void)[] = [];
  private sweeper?: NodeJS.Timeout;
  private sweeping?: Promise<void>;
  private stopped = false;
  private lastPrune = 0;

  constructor(private readonly o: RelayOptions) {
    this.publish = o.publish ?? defaultPublish;
    this.batch = o.batch ?? 500;
    this.slotsFree = o.concurrency ?? 4;
  }

  /** Starts the sweep; commits kick their own tenant at once (see `kick`). */
  start(): void {
    const every = this.o.sweepMs ?? 500;
    const tick = () => {
      this.sweeping = this.sweep().finally(() => {
        if (!this.stopped) this.sweeper = setTimeout(tick, every);
      });
    };
    tick();
  }

  /** Envelopes a command of this process committed: its relay publishes them without reading them back. */
  remember(events: EncodedEvent[]): void {
    for (const e of events) this.encoded.set(e.event_id, e.envelope);
    // Bounded: a forgotten one is read from the outbox instead.
    for (const id of this.encoded.keys()) {
      if (this.encoded.size <= ENCODED_CACHE) break;
      this.encoded.delete(id);
    }
  }

  /**
   * Relays a tenant's waiting events now. Resolves once a pass that began after this call
   * has ended (published, failed, or found another replica on it), never with an error.
   */
  kick(tenantKey: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    let s = this.tenants.get(tenantKey);
    if (!s) this.tenants.set(tenantKey, (s = { running: false, waiting: [], failures: 0, retryAt: 0 }));
    const state = s;
    return new Promise<void>((resolve) => {
      state.waiting.push(resolve);
      if (!state.running) void this.drain(tenantKey, state);
    });
  }

  /** Stops sweeping and waits for passes under way (a pass is bounded by its statement and publish timeouts). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.sweeper);
    await this.sweeping;
    const deadline = Date.now() + 35_000;
    while ([...this.tenants.values()].some((s) => s.running) && Date.now() < deadline) await sleep(10);
  }

  private async drain(tenantKey: string, s: TenantState): Promise<void> {
    s.running = true;
    try {
      while (s.waiting.length && !this.stopped) {
        const served = s.waiting.splice(0);
        if (Date.now() >= s.retryAt) await this.withSlot(() => this.relayTenant(tenantKey, s));
        for (const done of served) done();
      }
    } finally {
      s.running = false;
      for (const done of s.waiting.splice(0)) done();
      if (!s.failures) this.tenants.delete(tenantKey);
    }
  }

  private async relayTenant(tenantKey: string, s: TenantState): Promise<void> {
    try {
      for (let busy = 0; !this.stopped; ) {
        const r = await this.pass(tenantKey);
        if (r === "done") break;
        if (r === "busy") {
          // Another replica is on it; it may have read its rows before ours committed. The sweep covers the rest.
          if (++busy > 3) break;
          await sleep(20);
        }
      }
      if (this.stopped) return;
      if (s.failures) this.o.logger.info({ tenantKey, failures: s.failures }, "outbox relay recovered");
      s.failures = 0;
      s.retryAt = 0;
    } catch (err) {
      s.failures++;
      s.retryAt = Date.now() + Math.min(5_000, 100 * 2 ** Math.min(s.failures, 6));
      // Once when it starts, and loudly when it lasts (a row NATS refuses for good holds its tenant's events back).
      const log = s.failures === 1 ? "warn" : s.failures % 100 === 0 ? "error" : "debug";
      this.o.logger[log]({ tenantKey, err: (err as Error).message, failures: s.failures }, "outbox relay could not publish; will retry");
    }
  }

  /** One transaction: the tenant's relay lock, its oldest waiting rows, publish, mark. */
  private pass(tenantKey: string): Promise<Pass> {
    // While disconnected, nats.js would buffer the bytes and send them on reconnect, perhaps
    // long after another replica published and marked the same rows: no pass then.
    if (!this.o.bus.connected()) return Promise.reject(new Error("NATS is disconnected"));
    const acked: { seq: number; streamSeq: number }[] = [];
    let published: string[] = [];
    return this.o.db
      .transaction()
      .execute(async (tx): Promise<Pass> => {
        // One round trip: bounds so that a relay whose process hangs, or whose host vanished,
        // cannot hold the tenant for ever; the tenant's relay lock; what waits, read once it is held.
        const pending = await claimPending(tx, `outbox:${this.o.context}:${tenantKey}`, tenantKey, this.batch);
        if (pending === "busy") return "busy";
        if (!pending.length) return "done";
        // Taken from the cache before the next await: commits meanwhile may trim it.
        const cached = new Map(pending.map((r) => [r.seq, this.encoded.get(r.event_id)]));
        const read = await envelopesOfRows(
          tx,
          pending.filter((r) => cached.get(r.seq) === undefined).map((r) => r.seq),
        );
        const rows: OutboxRow[] = pending.map((r) => ({ ...r, envelope: cached.get(r.seq) ?? read.get(r.seq)! }));
        await this.publishInOrder(rows, acked);
        published = rows.map((r) => r.event_id);
        await markPublished(tx, acked);
        return pending.length < this.batch ? "done" : "more";
      })
      .then(
        (r) => {
          for (const a of acked) this.unmarked.delete(a.seq);
          for (const id of published) this.encoded.delete(id);
          return r;
        },
        (err: unknown) => {
          // What the stream took stays taken: remembered, so the next pass here marks it without a second send.
          for (const a of acked) this.unmarked.set(a.seq, a.streamSeq);
          throw err;
        },
      );
  }

  /** Publishes rows pipelined and in order (see publishChained); a row the stream took in an earlier pass is not sent again. */
  private publishInOrder(rows: OutboxRow[], acked: { seq: number; streamSeq: number }[]): Promise<void> {
    return publishChained(rows, {
      send: (row, afterId) => {
        const known = this.unmarked.get(row.seq);
        return known !== undefined ? Promise.resolve({ seq: known }) : this.publish(this.o.bus, row, afterId);
      },
      idOf: (row) => row.event_id,
      stored: (row, ack) => acked.push({ seq: row.seq, streamSeq: ack!.seq }),
    });
  }

  private async sweep(): Promise<void> {
    try {
      const tenants = await tenantsWithPending(this.o.db, 1_000);
      for (const t of tenants) void this.kick(t);
      if (Date.now() - this.lastPrune > 10_000) {
        this.lastPrune = Date.now();
        const limit = 5_000;
        while (!this.stopped && (await prunePublished(this.o.db, this.o.retentionMs ?? 60_000, limit)) === limit);
      }
    } catch (err) {
      this.o.logger.debug({ err: (err as Error).message }, "outbox sweep failed");
    }
  }

  private async withSlot<T>(run: () => Promise<T>): Promise<T> {
    if (this.slotsFree > 0) this.slotsFree--;
    else await new Promise<void>((r) => this.slotWaiters.push(r));
    try {
      return await run();
    } finally {
      const next = this.slotWaiters.shift();
      if (next) next();
      else this.slotsFree++;
    }
  }
}
