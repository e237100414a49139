import { AsyncLocalStorage } from "node:async_hooks";
import { setTimeout as delay } from "node:timers/promises";
import pg from "pg";
import type { Logger } from "@mam/runtime/logger.ts";

/** How often a replica standing by tries to take the lease, and the holder checks its connection. */
const TRY_EVERY_MS = 1_000;

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
 * One holder at a time across replicas: a Postgres session advisory lock held by a connection
 * of its own. The server lets it go the moment that connection ends, so a holder that dies
 * (its process killed, its host's sockets closed) frees it at once, and a replica standing by
 * takes it within TRY_EVERY_MS. A holder whose connection breaks stops at once, as it can no
 * longer know it still holds the lock.
 */
export class SessionLease {
  private client?: pg.Client;
  private stopped = false;
  private loop?: Promise<void>;
  private held = false;
  /** Resolves when the current connection fails (or the lease is stopped). */
  private broken?: Promise<void>;
  private wakeUp?: () => void;

  constructor(private readonly o: LeaseOptions) {}

  /** Tries once before resolving (a first replica holds the lease once started), then keeps trying in the background. */
  async start(): Promise<void> {
    await this.tryOnce();
    this.loop = this.run();
  }

  get holding(): boolean {
    return this.held;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await Promise.race([delay(TRY_EVERY_MS), this.broken, new Promise<void>((r) => (this.wakeUp = r))]);
      if (this.stopped) break;
      await this.tryOnce();
    }
  }

  private async tryOnce(): Promise<void> {
    try {
      const client = await this.connection();
      if (this.held) {
        // Still here: a dead connection is found now rather than when its socket times out.
        await client.query("select 1");
        return;
      }
      const r = await client.query<{ got: boolean; pid: number }>("select pg_try_advisory_lock(hashtextextended($1, 0)) as got, pg_backend_pid() as pid", [
        this.o.name,
      ]);
      if (!r.rows[0]?.got || this.stopped) return;
      this.held = true;
      this.o.logger.info({ lease: this.o.name }, "lease taken: this replica is the active one");
      await holding.run({ name: this.o.name, pid: r.rows[0].pid }, () => this.o.acquired());
    } catch (err) {
      if (!this.stopped) this.o.logger.warn({ err, lease: this.o.name }, "lease connection failed; trying again");
      await this.drop();
    }
  }

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client;
    const client = new pg.Client({ connectionString: this.o.url, keepAlive: true, application_name: `lease:${this.o.name}`.slice(0, 63) });
    this.broken = new Promise<void>((resolve) => {
      client.on("error", (err) => {
        this.o.logger.warn({ err: err.message, lease: this.o.name }, "lease connection lost");
        resolve();
        void this.drop();
      });
      client.on("end", () => resolve());
    });
    this.client = client;
    await client.connect();
    return client;
  }

  /** Lets go: what ran under the lease stops first (it must not outlive the lock), then the connection ends, which frees the lock. */
  private async drop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.broken = undefined;
    if (this.held) {
      this.held = false;
      this.o.logger.info({ lease: this.o.name }, "lease let go: this replica stands by");
      await this.o.lost().catch((err: unknown) => this.o.logger.warn({ err }, "could not stop what ran under the lease"));
    }
    await client?.end().catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeUp?.();
    await this.loop;
    await this.drop();
  }
}
