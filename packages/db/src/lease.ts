import { AsyncLocalStorage } from "node:async_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { sql, type Kysely } from "kysely";
import type { Logger } from "@mam/runtime/logger.ts";
import { connectionFor, join, type LeaseConnection, leave, type Owner, TRY_EVERY_MS } from "./lease-connection.ts";

// Named by the connection (lease-connection.ts), but looked for here by those that use leases.
export { LEASE_APPLICATION_NAME } from "./lease-connection.ts";

export interface LeaseOptions {
  url: string;
  /** Names the lock: one holder per name in the whole database (every schema, every deployment on it). */
  name: string;
  logger: Logger;
  /** The lease is ours: runs while it is held, until `lost`. */
  acquired: () => Promise<void>;
  /** The lease is ours no more (its connection broke, or we stop): stops what `acquired` started. */
  lost: () => Promise<void>;
}

/** A lease as held: its lock's name and the server process of the connection holding it. */
export interface HeldLease {
  name: string;
  pid: number;
}

const holding = new AsyncLocalStorage<HeldLease>();

/**
 * The lease under which the caller was started (by `acquired`), if any. Work that must not
 * commit once the lease has gone (a read model emptied by its one writer) checks in its own
 * transaction that the server still holds it (its lock granted to `pid` in pg_locks).
 */
export const heldLease = (): HeldLease | undefined => holding.getStore();

/**
 * Whether the server still grants the lease's lock to the connection that took it: while it
 * does, no other replica can hold the lease. A bigint advisory key shows in pg_locks as its
 * two halves.
 */
export async function leaseStillHeld(tx: Kysely<any>, lease: HeldLease): Promise<boolean> {
  const r = await sql<{ held: boolean }>`select exists (
    select 1 from pg_locks
    where locktype = 'advisory' and granted and pid = ${lease.pid} and objsubid = 1
      and database = (select oid from pg_database where datname = current_database())
      and ((classid::bigint << 32) | objid::bigint) = hashtextextended(${lease.name}, 0)
  ) as held`.execute(tx);
  return !!r.rows[0]?.held;
}

/**
 * One holder at a time across replicas: a Postgres session advisory lock, on a connection
 * the process's leases share (one per database, however many leases). The server lets it go
 * the moment that connection ends, so a holder that dies (its process killed, its host's
 * sockets closed) frees it at once, and a replica standing by takes it within TRY_EVERY_MS.
 * A holder whose connection breaks stops at once, as it can no longer know it still holds
 * the lock. A holder that stops gives its lock back; the connection stays for the others.
 */
export class SessionLease {
  private stopped = false;
  private joined = false;
  private first?: Promise<void>;
  private loop?: Promise<void>;
  private held = false;
  /** The connection this lease holds (or is taking) its lock on. */
  private on?: LeaseConnection;
  /** What `lost` is doing once the lease has gone: waited for before taking it again. */
  private lettingGo?: Promise<void>;
  private wakeUp?: () => void;
  private readonly owner: Owner = { held: () => this.held, lost: (c, err) => this.connectionLost(c, err) };

  constructor(private readonly o: LeaseOptions) {}

  /** Tries once before resolving (a first replica holds the lease once started), then keeps trying in the background. */
  async start(): Promise<void> {
    join(this.o.url);
    this.joined = true;
    this.first = this.tryOnce();
    await this.first;
    this.loop = this.run();
  }

  get holding(): boolean {
    return this.held;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await Promise.race([delay(TRY_EVERY_MS), new Promise<void>((r) => (this.wakeUp = r))]);
      if (this.stopped) break;
      await this.tryOnce();
    }
  }

  private async tryOnce(): Promise<void> {
    // Lost a moment ago: what ran under it has stopped before it is taken again.
    await this.lettingGo;
    // Held: its connection checks itself, for every lease on it.
    if (this.held || this.stopped) return;
    let c: LeaseConnection;
    try {
      c = await connectionFor(this.o.url);
    } catch (err) {
      if (!this.stopped) this.o.logger.warn({ err, lease: this.o.name }, "lease connection failed; trying again");
      return;
    }
    if (this.stopped || c.ended || c.owners.has(this.o.name)) return;
    c.owners.set(this.o.name, this.owner);
    this.on = c;
    let r: { got: boolean; pid: number } | undefined;
    try {
      r = (await c.query<{ got: boolean; pid: number }>("select pg_try_advisory_lock(hashtextextended($1, 0)) as got, pg_backend_pid() as pid", [this.o.name]))
        .rows[0];
    } catch (err) {
      if (!this.stopped) this.o.logger.warn({ err, lease: this.o.name }, "lease connection failed; trying again");
      // Whether the server took the lock is not known: only the connection's end makes sure it does not hold it.
      c.break(err);
      return;
    }
    // The connection broke meanwhile, and the lock (if taken) with it.
    if (this.on !== c) return;
    if (!r?.got) {
      c.owners.delete(this.o.name);
      this.on = undefined;
      return;
    }
    if (this.stopped) {
      await this.letGo();
      return;
    }
    this.held = true;
    this.o.logger.info({ lease: this.o.name }, "lease taken: this replica is the active one");
    try {
      await holding.run({ name: this.o.name, pid: r.pid }, () => this.o.acquired());
    } catch (err) {
      this.o.logger.warn({ err, lease: this.o.name }, "could not start what runs under the lease; letting it go");
      if (this.on === c) await this.letGo();
    }
  }

  /** Its connection broke: the lock went with it. */
  private connectionLost(c: LeaseConnection, err: unknown): void {
    if (this.on !== c) return;
    if (this.held) this.o.logger.warn({ err: err instanceof Error ? err.message : err, lease: this.o.name }, "lease connection lost");
    void this.letGo();
    // Tries again on a new connection now rather than at the next turn.
    this.wakeUp?.();
  }

  /**
   * Lets go: what ran under the lease stops first (it must not outlive the lock), then the
   * lock is given back, unless the connection went and took it along. Only then may another
   * lease of this process take the name (the owner stays meanwhile).
   */
  private letGo(): Promise<void> {
    const c = this.on;
    const wasHeld = this.held;
    this.on = undefined;
    this.held = false;
    this.lettingGo = (async () => {
      let stopped = true;
      if (wasHeld) {
        this.o.logger.info({ lease: this.o.name }, "lease let go: this replica stands by");
        await this.o.lost().catch((err: unknown) => {
          stopped = false;
          this.o.logger.warn({ err }, "could not stop what ran under the lease");
        });
      }
      if (!c || c.ended) return;
      if (stopped) await this.giveBack(c);
      // What ran under it may still be running: given back on this connection, the lock would go
      // to another lease of this process under the same server process, which the work's own
      // check (its lock granted to that process) could not tell apart. Ending the connection
      // frees it under a process nothing holds any more (the other leases on it are lost too).
      else c.break(new Error(`what ran under lease ${this.o.name} did not stop`));
    })();
    return this.lettingGo;
  }

  private async giveBack(c: LeaseConnection): Promise<void> {
    try {
      await c.query("select pg_advisory_unlock(hashtextextended($1, 0))", [this.o.name]);
      if (c.owners.get(this.o.name) === this.owner) c.owners.delete(this.o.name);
    } catch (err) {
      // Not given back: ending the connection frees it (the other leases on it are lost, and try again).
      this.o.logger.warn({ err, lease: this.o.name }, "could not give the lease back; ending its connection");
      c.break(err);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeUp?.();
    await this.first;
    await this.loop;
    if (this.on) await this.letGo();
    else await this.lettingGo;
    if (this.joined) {
      this.joined = false;
      await leave(this.o.url);
    }
  }
}
