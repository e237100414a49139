import { Kysely, type MigrationResultSet, Migrator, PostgresDialect, sql, type Migration } from "kysely";
import pg from "pg";
import { DependencyUnavailable } from "@mam/runtime/dependency.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import { preparingPool } from "./prepared.ts";

// int8 (counts, stream sequences) as numbers: every value we store stays below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

/**
 * What a catalog scan hits when another session changes the catalog under it: a schema gone
 * (3F000), a table or column gone or renamed (42P01, 42703), a relation dropped between lookups
 * ("cache lookup failed", XX000).
 */
const CATALOG_RACES = new Set(["3F000", "42P01", "42703", "XX000"]);

/**
 * Kysely's migrator introspects every schema of the database; a schema dropped, or a table
 * altered, meanwhile by someone else (another service's tests, an operator) fails that scan,
 * so it is retried. (A migration of ours failing so fails the same way each time, and is
 * answered as it is.)
 */
export async function migrateToLatest(migrator: Migrator): Promise<MigrationResultSet> {
  let outcome = await migrator.migrateToLatest();
  for (let i = 0; i < 5 && outcome.error && CATALOG_RACES.has((outcome.error as { code?: string }).code ?? ""); i++) {
    await new Promise((r) => setTimeout(r, 100 * (i + 1)));
    outcome = await migrator.migrateToLatest();
  }
  return outcome;
}

/** Enough for every statement a service sends often. */
const DEFAULT_PREPARED = 200;

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export interface OpenDbOptions {
  url: string;
  /** Each service owns one schema; tests give every file its own. */
  schema: string;
  logger: Logger;
  poolSize?: number;
  /** Statement texts sent as named (prepared) statements per connection (see prepared.ts); 0: none. 200 by default. */
  preparedStatements?: number;
  migrations: Record<string, Migration>;
  /** Told each statement's time from sending it to its result, and whether it failed (the service's metrics). */
  onQuery?: (seconds: number, failed: boolean) => void;
}

export interface Database<DB> {
  db: Kysely<DB>;
  schema: string;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Opens a pool whose connections all resolve names in the service's schema, creates the
 * schema and applies the service's migrations (Kysely's migrator holds a lock while it
 * does, so replicas starting together apply each migration once).
 */
export async function openDatabase<DB>(o: OpenDbOptions): Promise<Database<DB>> {
  if (!SCHEMA_NAME.test(o.schema)) throw new Error(`invalid schema name: ${o.schema}`);
  const pool = new pg.Pool({
    connectionString: o.url,
    max: o.poolSize ?? 10,
    // Bounded well below the gateway's RPC timeout (15 s): with the server unreachable, a
    // request is answered 503 UNAVAILABLE within this, rather than outliving its caller.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    // A server or host that vanished is noticed by the socket, not hours later.
    keepAlive: true,
    // No parallel query: a service's statements are short, and a page of 20 rows planned as a
    // Gather (the thread view at half a million messages) spent 5 to 30 ms starting workers for
    // a query that reads under a millisecond of rows; on a few cores it also takes them from
    // the other requests.
    options: `-c search_path=${o.schema} -c max_parallel_workers_per_gather=0`,
    application_name: o.schema,
  });
  // An idle client losing its server must not crash the process; the next query reconnects.
  pool.on("error", (err) => o.logger.warn({ err: err.message }, "PostgreSQL connection lost"));
  // The pool listens for errors on idle connections only; one that breaks while checked out
  // (a server restart mid-transaction) would otherwise be an unhandled 'error' event, which
  // ends the process. Its query fails instead, and the caller retries.
  pool.on("connect", (client) => client.on("error", (err) => o.logger.warn({ err: err.message }, "PostgreSQL connection lost while in use")));
  try {
    const c = await pool.connect();
    try {
      // Replicas starting together race here: `IF NOT EXISTS` does not stop the loser of two
      // concurrent creations from failing on the catalog's unique index (23505).
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${o.schema}`).catch((err: { code?: string }) => {
        if (err.code !== "23505") throw err;
      });
    } finally {
      c.release();
    }
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new DependencyUnavailable("PostgreSQL", o.url, err);
  }
  const { onQuery } = o;
  const db = new Kysely<DB>({
    dialect: new PostgresDialect({
      pool: (o.preparedStatements ?? DEFAULT_PREPARED) > 0 ? preparingPool(pool, o.preparedStatements ?? DEFAULT_PREPARED) : pool,
    }),
    // Every statement, a transaction's begin and commit included: each is a round trip.
    // A failing hook must not fail the statement it reports (kysely calls it as the statement ends).
    ...(onQuery && {
      log: (e) => {
        try {
          onQuery(e.queryDurationMillis / 1000, e.level === "error");
        } catch {
          // Metrics are best effort.
        }
      },
    }),
  });
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => o.migrations },
    migrationTableSchema: o.schema,
  });
  const { error, results } = await migrateToLatest(migrator);
  for (const r of results ?? []) o.logger.info({ migration: r.migrationName, status: r.status }, "migration");
  if (error) {
    await db.destroy();
    throw error;
  }
  return {
    db,
    schema: o.schema,
    ping: async () => {
      try {
        await sql`select 1`.execute(db);
        return true;
      } catch {
        return false;
      }
    },
    close: () => db.destroy(),
  };
}
