import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
// Paused tenants: whether billing last said the tenant is paused (TenantBillingChanged; no
// row: not paused). A paused tenant's sends are refused; reading and receiving go on.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table tenant_pauses (
      tenant_id uuid not null primary key,
      paused boolean not null,
      version integer not null
    )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists tenant_pauses`.execute(db);
}
