import { Kysely, Migrator, PostgresDialect, type LogEvent } from "kysely";
import pg from "pg";
import { migrateToLatest } from "@mam/db/database.ts";
import { migrations } from "@mam/mailbox/db/migrations/index.ts";
import type { MailboxDb } from "@mam/mailbox/db/schema.ts";
import type { Isolation } from "@mam/testing/isolation.ts";

/**
 * The mailbox's read model without the service around it: a pool on this file's own mailbox
 * schema, created and migrated as the mailbox migrates it (again, and harmlessly, by each pool
 * a file opens on it). `log` sees every statement, the migration's included.
 */
export async function mailboxSchemaDb(
  iso: Isolation,
  o: { max?: number; applicationName?: string; log?: (e: LogEvent) => void } = {},
): Promise<Kysely<MailboxDb>> {
  const schema = iso.schema("mailbox");
  const pool = new pg.Pool({
    connectionString: iso.urls.DATABASE_URL,
    max: o.max ?? 2,
    options: `-c search_path=${schema}`,
    ...(o.applicationName ? { application_name: o.applicationName } : {}),
  });
  await pool.query(`create schema if not exists ${schema}`);
  const db = new Kysely<MailboxDb>({ dialect: new PostgresDialect({ pool }), ...(o.log ? { log: o.log } : {}) });
  const { error } = await migrateToLatest(new Migrator({ db, provider: { getMigrations: async () => migrations }, migrationTableSchema: schema }));
  if (error) throw error;
  return db;
}
