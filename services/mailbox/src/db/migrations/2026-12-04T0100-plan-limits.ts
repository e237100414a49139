import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
// Plan limits: each tenant's limits as billing last told them (TenantPlanChanged; no row:
// unlimited), and the messages each tenant sent per UTC month, counted in the send's
// transaction. Live inboxes (index inboxes_tenant) and domains per tenant are
// counted from their tables.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table tenant_limits (
      tenant_id uuid not null primary key,
      plan_id text not null,
      inboxes integer,
      emails_per_month integer,
      domains integer,
      version integer not null
    )`.execute(db);
  await sql`
    create table tenant_monthly_sends (
      tenant_id uuid not null,
      month date not null,
      sent integer not null,
      primary key (tenant_id, month)
    )`.execute(db);
  await sql`create index if not exists domains_live_by_tenant on domains (tenant_id) where deleted_at is null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists domains_live_by_tenant`.execute(db);
  await sql`drop table if exists tenant_monthly_sends`.execute(db);
  await sql`drop table if exists tenant_limits`.execute(db);
}
