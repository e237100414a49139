import { AsyncLocalStorage } from "node:async_hooks";
import { hostname } from "node:os";
import { setTimeout as delay } from "node:timers/promises";
import pg from "pg";
import type { Logger } from "@mam/runtime/logger.ts";

/** How often a replica standing by tries to take the lease, and a connection holding leases is checked. */
const TRY_EVERY_MS = 1_000;
/** How long a lease query may take before its connection is taken for dead. */
const QUERY_TIMEOUT_MS = 10_000;

/**
 * The application_name of this process's lease connection (one per database URL, shared by
 * every lease of the process on it). The pid first: the hostname may be cut to fit 63 bytes.
 */
export const LEASE_APPLICATION_NAME = `lease:${process.pid}:${hostname()}`.slice(0, 63);

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

/** A lease as its connection knows it: whether it holds its lock, and what to tell it when the connection goes. */
interface Owner {
  held(): boolean;
  lost(c: LeaseConnection, err: unknown): void;
}

/**
 * The one connection the leases of this process on one database URL hold their locks on.
 * Each lease takes and gives back its own lock (by name), but the server lets them all go
 * at once when the connection ends: when it breaks, every lease on it is lost.
 */
class LeaseConnection {
  /**
   * Which lease of this process holds each name here, or is taking it. Session locks are
   * re-entrant: the server would grant a name held on this connection to a second lease of
   * it too, so a second one stands by as if it were in another process.
   */
  readonly owners = new Map<string, Owner>();
  private readonly client: pg.Client;
  /** Connected (or failed to). */
  readonly ready: Promise<void>;
  /** Broken or closed: nothing is held on it any more. */
  ended = false;
  private timer?: NodeJS.Timeout;
  /** The last query asked for: the next waits for it (see query). */
  private last: Promise<unknown> = Promise.resolve();

  constructor(url: string) {
    // A query that never answers (a socket half open) fails after QUERY_TIMEOUT_MS, which ends the connection.
    this.client = new pg.Client({ connectionString: url, keepAlive: true, application_name: LEASE_APPLICATION_NAME, query_timeout: QUERY_TIMEOUT_MS });
    this.client.on("error", (err) => this.break(err));
    this.client.on("end", () => this.break(new Error("lease connection ended")));
    this.ready = this.client.connect().then(
      () => this.schedule(),
      (err: unknown) => {
        this.break(err);
        throw err;
      },
    );
  }

  /** Gone, and every lock on it with it: each lease on it is lost (and tries again on a new connection). */
  break(err: unknown): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    const owners = [...this.owners.values()];
    this.owners.clear();
    for (const o of owners) o.lost(this, err);
    void this.client.end().catch(() => undefined);
  }

  /** Once the last lease on it has stopped (each gave its lock back). */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    await this.client.end().catch(() => undefined);
  }

  /** One at a time, in the order asked: pg queues a query given while one runs, but will refuse it from pg@9. */
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    const q = this.last.then(() => this.client.query<R>(text, values));
    this.last = q.catch(() => undefined);
    return q;
  }

  private schedule(): void {
    if (!this.ended) this.timer = setTimeout(() => void this.check(), TRY_EVERY_MS);
  }

  /**
   * While it holds anything, once an interval for all its leases: a dead connection is found
   * now rather than when its socket times out.
   */
  private async check(): Promise<void> {
    if ([...this.owners.values()].some((o) => o.held())) {
      try {
        await this.query("select 1");
      } catch (err) {
        this.break(err);
      }
    }
    this.schedule();
  }
}

/** Per database URL: how many leases are started (and not stopped), and the connection they share. */
const shared = new Map<string, { leases: number; connection?: LeaseConnection }>();

/** The connection of `url`'s leases, opened anew if there is none or it broke. */
async function connectionFor(url: string): Promise<LeaseConnection> {
  const s = shared.get(url);
  if (!s) throw new Error("lease not started");
  if (!s.connection || s.connection.ended) s.connection = new LeaseConnection(url);
  const c = s.connection;
  await c.ready;
  return c;
}

function join(url: string): void {
  const s = shared.get(url) ?? { leases: 0 };
  s.leases++;
  shared.set(url, s);
}

/** The last lease of `url` to stop ends its connection. */
async function leave(url: string): Promise<void> {
  const s = shared.get(url);
  if (!s || --s.leases > 0) return;
  shared.delete(url);
  await s.connection?.close();
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
