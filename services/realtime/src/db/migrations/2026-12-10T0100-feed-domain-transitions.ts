import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
// The domain events that made a domain verified (each announced as domain.verified): a batch
// of the feed tried again after a failed publish renders such an event again, by then older
// than the domain's row, and must announce it again (the feed stores it once by its id).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table feed_domain_transitions (
    event_id text primary key,
    workspace_id text not null,
    domain_id text not null
  )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table feed_domain_transitions`.execute(db);
}
