import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
// Stripe: each tenant's customer, subscription, status and period (the read model of
// TenantBillingChanged), and the Stripe events already handled (each event id once).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table tenant_billing (
      tenant_id uuid not null primary key,
      status text not null,
      customer_id text,
      subscription_id text,
      period_start timestamptz,
      period_end timestamptz,
      past_due_since timestamptz,
      stripe_at bigint,
      version integer not null
    )`.execute(db);
  await sql`create unique index tenant_billing_customer on tenant_billing (customer_id) where customer_id is not null`.execute(db);
  await sql`create index tenant_billing_past_due on tenant_billing (past_due_since) where status = 'past_due'`.execute(db);
  await sql`
    create table stripe_events (
      event_id text not null primary key,
      tenant_id uuid,
      handled_at timestamptz not null
    )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ["stripe_events", "tenant_billing"]) await sql`drop table if exists ${sql.table(t)}`.execute(db);
}
