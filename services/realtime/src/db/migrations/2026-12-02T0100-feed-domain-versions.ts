import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
// The feed's memory of domains follows each domain's events by version: a row stays when a
// domain stops being verified (verified false), so an older event delivered late (a retry, a
// second replica) can no longer undo what a newer one recorded.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table feed_verified_domains add column version integer not null default 0`.execute(db);
  await sql`alter table feed_verified_domains add column verified boolean not null default true`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`delete from feed_verified_domains where not verified`.execute(db);
  await sql`alter table feed_verified_domains drop column verified`.execute(db);
  await sql`alter table feed_verified_domains drop column version`.execute(db);
}
