import { Kysely, type Migration, Migrator, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { migrations as billingMigrations } from "@mam/billing/db/migrations/index.ts";
import { migrations as identityMigrations } from "@mam/identity/db/migrations/index.ts";
import { migrations as mailboxMigrations } from "@mam/mailbox/db/migrations/index.ts";
import { migrations as realtimeMigrations } from "@mam/realtime/db/migrations/index.ts";
import { kitMigrations } from "@mam/service-kit/migrations/index.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { migrateToLatest } from "@mam/db/database.ts";

type Parameters = Record<string, number>;

// The settings the README's "Autovacuum" paragraph describes, as the migrations must leave them.
const QUEUE: Parameters = { autovacuum_vacuum_scale_factor: 0, autovacuum_vacuum_threshold: 1000, autovacuum_analyze_scale_factor: 0.05 };
const HOT_ROWS: Parameters = { autovacuum_vacuum_scale_factor: 0, autovacuum_vacuum_threshold: 200, fillfactor: 70 };

/** Each service's migrations (with the kit's, as every event-sourced service runs them), and every table of its schema that has storage parameters. */
const SERVICES: Record<string, { migrations: Record<string, Migration>; tuned: Record<string, Parameters> }> = {
  identity: { migrations: identityMigrations, tuned: { outbox: QUEUE, projection_checkpoint: HOT_ROWS } },
  mailbox: {
    migrations: mailboxMigrations,
    tuned: {
      outbox: QUEUE,
      delivery_queue: QUEUE,
      projection_checkpoint: HOT_ROWS,
      tenant_monthly_sends: HOT_ROWS,
      folder_counts: { autovacuum_vacuum_scale_factor: 0.01, autovacuum_vacuum_threshold: 200, fillfactor: 80 },
      thread_folders: { autovacuum_vacuum_scale_factor: 0.02, autovacuum_vacuum_threshold: 1000, autovacuum_analyze_scale_factor: 0.05 },
      threads: { autovacuum_vacuum_scale_factor: 0.02, autovacuum_vacuum_threshold: 1000, fillfactor: 90 },
    },
  },
  billing: { migrations: billingMigrations, tuned: { outbox: QUEUE, projection_checkpoint: HOT_ROWS, metric_checkpoint: HOT_ROWS } },
  realtime: {
    migrations: realtimeMigrations,
    tuned: {
      outbox: QUEUE,
      projection_checkpoint: HOT_ROWS,
      ws_directory_checkpoint: HOT_ROWS,
      webhook_health: HOT_ROWS,
      webhook_deliveries: { autovacuum_vacuum_scale_factor: 0.01, autovacuum_vacuum_threshold: 1000, autovacuum_analyze_scale_factor: 0.02, fillfactor: 90 },
    },
  },
};

/** The migrations that set them, by name: each service's own and the kit's. */
const SETTING_MIGRATIONS = ["2026-12-09T0100-autovacuum", "2026-12-09T0000-kit-outbox-autovacuum"];

/** The storage parameters of every table of the schema that has any, as the catalog holds them (`name=value`). */
async function storageParameters(db: Kysely<any>, schema: string): Promise<Record<string, Parameters>> {
  const { rows } = await sql<{ relname: string; reloptions: string[] }>`
    select c.relname, c.reloptions from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and c.relkind = 'r' and c.reloptions is not null`.execute(db);
  return Object.fromEntries(
    rows.map((r) => [
      r.relname,
      Object.fromEntries(
        r.reloptions.map((o) => {
          const [name, value] = o.split("=");
          return [name!, Number(value)];
        }),
      ),
    ]),
  );
}

describe("autovacuum settings of the tables that churn", () => {
  const iso = isolate();
  const opened: Kysely<any>[] = [];
  afterAll(async () => {
    for (const db of opened) await db.destroy();
    await iso.cleanup();
  });

  for (const [service, { migrations, tuned }] of Object.entries(SERVICES)) {
    it(`${service}: a fresh schema, migrated, has them on exactly its churning tables; the migrations' down takes them off`, async () => {
      const schema = iso.schema(service);
      const pool = new pg.Pool({ connectionString: iso.urls.DATABASE_URL, max: 1, options: `-c search_path=${schema}` });
      await pool.query(`create schema if not exists ${schema}`);
      const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
      opened.push(db);
      const all = { ...migrations, ...kitMigrations };
      // Retried as a service's start retries it: another test file dropping its schema meanwhile fails Kysely's catalog scan.
      const { error } = await migrateToLatest(new Migrator({ db, provider: { getMigrations: async () => all }, migrationTableSchema: schema }));
      if (error) throw error;

      expect(await storageParameters(db, schema)).toEqual(tuned);

      for (const name of SETTING_MIGRATIONS) await all[name]!.down!(db);
      expect(await storageParameters(db, schema)).toEqual({});
    });
  }
});
