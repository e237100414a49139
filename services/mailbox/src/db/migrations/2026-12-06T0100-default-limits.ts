import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
// The default plan's limits as billing last announced them (DefaultLimitsSet): one row, the
// limits of a tenant billing has not told its own plan yet. No row, or plan_id null: unlimited.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table default_limits (
      id smallint not null primary key check (id = 1),
      plan_id text,
      inboxes integer,
      emails_per_month integer,
      domains integer,
      version integer not null
    )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists default_limits`.execute(db);
}
