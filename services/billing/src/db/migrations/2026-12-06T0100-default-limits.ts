import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
// The default plan's limits as last announced (the read model of DefaultLimitsSet): one row.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table default_limits (
      id smallint not null primary key check (id = 1),
      plan_id text,
      limits jsonb,
      version integer not null
    )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists default_limits`.execute(db);
}
