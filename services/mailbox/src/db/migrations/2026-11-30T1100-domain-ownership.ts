import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
// `domain_claims` held the first tenant to add a name; from now on it holds the name's owner,
// the first claim whose DNS proof verified. Unverified claims leave it: they own nothing.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    delete from domain_claims c
    where not exists (
      select 1 from domains d where d.domain_id = c.domain_id and d.status = 'verified' and d.deleted_at is null
    )`.execute(db);
  // Reads ask "is this claim the owner?" for every domain they list.
  await sql`create unique index domain_claims_domain_id on domain_claims (domain_id)`.execute(db);
}

// The unverified claims removed by `up` are not restored: a replay of the events rebuilds them.
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index domain_claims_domain_id`.execute(db);
}
