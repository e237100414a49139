import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from "kysely";
import type pg from "pg";

/**
 * Failures after which a connection's prepared statements are not to be trusted: a table a
 * statement reads changed its columns under it (`cached plan must not change result type`,
 * after another replica's migration), or the server no longer knows the statement (a pooler
 * in between reset the session). The statement fails, as any statement may; the connection is
 * closed when it is given back, and the pool opens a fresh one.
 */
const STALE_STATEMENT = new Set(["0A000", "26000"]);

/**
 * A pool whose connections send each parameterised statement as a named (prepared) one, the
 * first time with its text and from then on by name: PostgreSQL parses it once per connection
 * and, once it has seen that a generic plan costs no more than planning each time, stops
 * planning it too. Measured on this machine for a 30-column insert and a lookup by key, the
 * server's CPU per statement fell by a third or more. At most `perConnection` texts are named on a
 * connection (those seen first: the hot ones); any other text goes unnamed, as before, so a
 * statement whose text varies (a multi-row insert per row count) cannot fill the server's memory.
 * Statements without parameters (`begin`, `commit`) go as simple queries, as before.
 *
 * A page (`limit`, `offset`) is never named: a generic plan is made without the values, so it
 * cannot know that a scope's rows are few or many, nor use an index whose condition depends on
 * them; for a workspace's inboxes PostgreSQL kept one that read them all and sorted them
 * (test/e2e/list-plans.test.ts checks the plans every prepared list query would get).
 *
 * Behind a pooler that moves sessions between clients (PgBouncer in transaction mode before
 * 1.21), named statements do not work: `DB_PREPARED_STATEMENTS=0` turns this off.
 */
export function preparingPool(pool: pg.Pool, perConnection: number): PostgresPool {
  const clients = new WeakMap<pg.PoolClient, PreparingClient>();
  return {
    async connect() {
      const client = await pool.connect();
      // One per connection, kept as long as the connection lives (Kysely knows a connection by it).
      let preparing = clients.get(client);
      if (!preparing) {
        preparing = new PreparingClient(client, perConnection);
        clients.set(client, preparing);
      }
      return preparing;
    },
    end: () => pool.end(),
  };
}

/** Whether a statement's text is sent named (see preparingPool): one with parameters that reads no page. */
export const namedWhenSent = (text: string, parameters: number) => parameters > 0 && !PAGED.test(text);
const PAGED = /\b(limit|offset)\b/i;

class PreparingClient implements PostgresPoolClient {
  /** Statement names by text, for this connection's session. */
  private readonly names = new Map<string, string>();
  private stale = false;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly perConnection: number,
  ) {}

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(text: string | PostgresCursor<R>, parameters?: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    if (typeof text !== "string") return this.client.query(text as never) as unknown as PostgresCursor<R>;
    const values = (parameters ?? []) as unknown[];
    const name = namedWhenSent(text, values.length) ? this.nameOf(text) : undefined;
    const result = name ? this.client.query({ name, text, values }) : this.client.query(text, values);
    return (result as Promise<PostgresQueryResult<R>>).catch((err: { code?: string }) => {
      if (name && STALE_STATEMENT.has(err.code ?? "")) this.stale = true;
      throw err;
    });
  }

  release(destroy?: boolean): void {
    this.client.release(destroy || this.stale);
  }

  private nameOf(text: string): string | undefined {
    if (this.stale) return undefined;
    let name = this.names.get(text);
    if (name === undefined && this.names.size < this.perConnection) {
      name = `mam_${this.names.size + 1}`;
      this.names.set(text, name);
    }
    return name;
  }
}
