import { hostname } from "node:os";
import pg from "pg";

// The connection a process's leases (SessionLease, lease.ts) hold their locks on, and its
// sharing: one per database URL however many leases, where each lease is one lock on it.

/** How often a replica standing by tries to take the lease, and a connection holding leases is checked. */
export const TRY_EVERY_MS = 1_000;
/** How long a lease query may take before its connection is taken for dead. */
const QUERY_TIMEOUT_MS = 10_000;

/**
 * The application_name of this process's lease connection (one per database URL, shared by
 * every lease of the process on it). The pid first: the hostname may be cut to fit 63 bytes.
 */
export const LEASE_APPLICATION_NAME = `lease:${process.pid}:${hostname()}`.slice(0, 63);

/** A lease as its connection knows it: whether it holds its lock, and what to tell it when the connection goes. */
export interface Owner {
  held(): boolean;
  lost(c: LeaseConnection, err: unknown): void;
}

/**
 * The one connection the leases of this process on one database URL hold their locks on.
 * Each lease takes and gives back its own lock (by name), but the server lets them all go
 * at once when the connection ends: when it breaks, every lease on it is lost.
 */
export class LeaseConnection {
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
export async function connectionFor(url: string): Promise<LeaseConnection> {
  const s = shared.get(url);
  if (!s) throw new Error("lease not started");
  if (!s.connection || s.connection.ended) s.connection = new LeaseConnection(url);
  const c = s.connection;
  await c.ready;
  return c;
}

/** A lease of `url` starts: counted, so that its connection stays until the last one stops (leave). */
export function join(url: string): void {
  const s = shared.get(url) ?? { leases: 0 };
  s.leases++;
  shared.set(url, s);
}

/** The last lease of `url` to stop ends its connection. */
export async function leave(url: string): Promise<void> {
  const s = shared.get(url);
  if (!s || --s.leases > 0) return;
  shared.delete(url);
  await s.connection?.close();
}
