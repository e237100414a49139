import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
// The feed's memory of which domains are verified, so domain.verified fires on the transition
// only; `event_id` is the check that made it so (a redelivery of that check renders it again).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table feed_verified_domains (
      workspace_id uuid not null,
      domain_id uuid not null,
      domain text not null,
      event_id uuid not null,
      verified_at timestamptz not null,
      primary key (workspace_id, domain_id)
    )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table feed_verified_domains`.execute(db);
}
