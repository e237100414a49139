import { createHash } from "node:crypto";
import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from "kysely";
import type pg from "pg";

/**
 * A pool whose connections send each write (`insert`, `update`, `delete` with parameters) as
 * a named (prepared) statement from the second time its text is seen on the connection:
 * PostgreSQL parses it once per connection and, once it has seen that a generic plan costs no
 * more than planning each time, stops planning it too. `pnpm bench:db` measures what that saves.
 *
 * Reads are never named. A generic plan is made without the parameters' values: it cannot tell
 * a big scope from a small one, nor use an index whose condition holds only for some values
 * (Kysely sends `kind = 'tenant'` as `kind = $3`), and PostgreSQL keeps the plan it chose on a
 * connection's first runs. For a workspace's inboxes it kept one that read them all and sorted
 * them. A write finds its rows by key, where every plan is the same.
 *
 * At most `perConnection` texts are named on a connection; a text seen once (a multi-row
 * insert of a batch size that does not come back) is not, so one-off texts do not take the
 * places. A statement's name is a hash of its text: the same name means the same text on any
 * connection, even behind a pooler that moves sessions. `DB_PREPARED_STATEMENTS=0` turns all
 * of this off (PgBouncer in transaction mode before 1.21 does not keep named statements).
 */
export function preparingPool(pool: pg.Pool, perConnection: number): PostgresPool {
  const clients = new WeakMap<pg.PoolClient, PreparingClient>();
  const generation = { current: 0 };
  return {
    async connect() {
      for (;;) {
        const client = await pool.connect();
        // One per connection, kept as long as the connection lives (Kysely knows a connection by it).
        let preparing = clients.get(client);
        if (!preparing) {
          preparing = new PreparingClient(client, perConnection, generation);
          clients.set(client, preparing);
        }
        // Its statements were prepared before one of the pool's went stale (a migration): replaced.
        if (!preparing.older) return preparing;
        client.release(true);
      }
    },
    end: () => pool.end(),
  };
}

/** Whether a text is ever sent named: a write with parameters (see preparingPool). */
export const namedWhenSent = (text: string, parameters: number) => parameters > 0 && WRITE.test(text);
const WRITE = /^\s*(insert|update|delete)\b/i;

/** Texts seen once, remembered to be named when seen again; forgotten in bulk past this many. */
const SEEN_MAX = 1_000;

/**
 * Failures after which a connection's named statements are not to be trusted: a table a
 * statement returns `*` of changed its columns (another replica's migration), the server does
 * not know the name (a pooler reset the session) or knows it already (one moved sessions), or
 * the client failed before the server answered (node-postgres then closes the statement it
 * had just prepared). Nothing of the statement ran.
 */
function stale(err: { code?: string; message?: string }): boolean {
  if (!err.code) return true;
  if (err.code === "0A000") return /cached plan must not change result type/.test(err.message ?? "");
  return err.code === "26000" || err.code === "42P05";
}

class PreparingClient implements PostgresPoolClient {
  /** Statement names by text, for this connection's session. */
  private readonly names = new Map<string, string>();
  private readonly seen = new Set<string>();
  private stale = false;
  private readonly born: number;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly perConnection: number,
    private readonly generation: { current: number },
  ) {
    this.born = generation.current;
  }

  /** Whether the pool has found a stale statement since this connection was opened. */
  get older(): boolean {
    return this.stale || this.born < this.generation.current;
  }

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(text: string | PostgresCursor<R>, parameters?: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    if (typeof text !== "string") return this.client.query(text as never) as unknown as PostgresCursor<R>;
    const values = (parameters ?? []) as unknown[];
    const name = namedWhenSent(text, values.length) ? this.nameOf(text) : undefined;
    if (!name) return this.client.query(text, values) as unknown as Promise<PostgresQueryResult<R>>;
    return (this.client.query({ name, text, values }) as unknown as Promise<PostgresQueryResult<R>>).catch((err: { code?: string; message?: string }) => {
      if (!stale(err)) throw err;
      this.stale = true;
      this.generation.current++;
      // Outside a transaction nothing was left half done: sent again, unnamed. Inside one, the
      // transaction failed, and its caller decides, as for any failed statement.
      if (this.client.getTransactionStatus() === "I") return this.client.query(text, values) as unknown as Promise<PostgresQueryResult<R>>;
      throw err;
    });
  }

  release(destroy?: boolean): void {
    this.client.release(destroy || this.stale);
  }

  private nameOf(text: string): string | undefined {
    if (this.stale) return undefined;
    const name = this.names.get(text);
    if (name !== undefined || this.names.size >= this.perConnection) return name;
    if (!this.seen.has(text)) {
      if (this.seen.size >= SEEN_MAX) this.seen.clear();
      this.seen.add(text);
      return undefined;
    }
    this.seen.delete(text);
    const named = `mam_${createHash("sha1").update(text).digest("base64url")}`;
    this.names.set(text, named);
    return named;
  }
}
