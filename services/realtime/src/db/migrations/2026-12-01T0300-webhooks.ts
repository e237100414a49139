import { sql, type Kysely } from "kysely";
import { createProjectionBookkeeping, dropProjectionBookkeeping } from "@mam/service-kit/bookkeeping-tables.ts";

// Frozen: never edit a migration that has shipped; add a new one.
// Webhooks: the read model of the Webhook aggregate's events, the signing secrets (never in an
// event), delivery health, the delivery queue and its attempt log; and the bookkeeping every
// event-sourced service keeps (which events a projection applied, and how far it is).
export async function up(db: Kysely<any>): Promise<void> {
  await createProjectionBookkeeping(db);

  // A tenant-wide webhook is filed under the nil workspace.
  await sql`
    create table webhooks (
      workspace_id uuid not null,
      webhook_id uuid not null,
      tenant_id uuid not null,
      url text not null,
      events text[] not null,
      is_active boolean not null,
      version integer not null,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      primary key (workspace_id, webhook_id)
    )`.execute(db);
  await sql`create index webhooks_tenant on webhooks (tenant_id, created_at, webhook_id)`.execute(db);

  await sql`
    create table webhook_secrets (
      workspace_id uuid not null,
      webhook_id uuid not null,
      tenant_id uuid not null,
      secret text not null,
      created_at timestamptz not null,
      primary key (workspace_id, webhook_id)
    )`.execute(db);

  await sql`
    create table webhook_health (
      workspace_id uuid not null,
      webhook_id uuid not null,
      failing_since timestamptz,
      last_delivery_at timestamptz,
      primary key (workspace_id, webhook_id)
    )`.execute(db);

  await sql`
    create table webhook_ended_workspaces (
      workspace_id uuid primary key,
      tenant_id uuid not null,
      ended_at timestamptz not null
    )`.execute(db);

  // One row per webhook and event, whatever happens to the feed entry (a redelivery adds
  // nothing). The body is the exact bytes signed, kept while the delivery is pending.
  await sql`
    create table webhook_deliveries (
      webhook_id uuid not null,
      event_id text not null,
      workspace_id uuid not null,
      tenant_id uuid not null,
      event_type text not null,
      body text,
      state text not null check (state in ('pending', 'delivered', 'failed', 'canceled')),
      attempts integer not null default 0,
      first_attempt_at timestamptz,
      next_attempt_at timestamptz not null,
      retry_delay_ms integer,
      locked_until timestamptz,
      lease uuid,
      created_at timestamptz not null,
      completed_at timestamptz,
      primary key (webhook_id, event_id)
    )`.execute(db);
  await sql`create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where state = 'pending'`.execute(db);
  await sql`create index webhook_deliveries_completed on webhook_deliveries (completed_at) where state <> 'pending'`.execute(db);

  await sql`
    create table webhook_attempts (
      workspace_id uuid not null,
      webhook_id uuid not null,
      attempt_id uuid not null,
      event_id text not null,
      event_type text not null,
      attempt integer not null,
      attempted_at timestamptz not null,
      status_code integer,
      latency_ms integer not null,
      success boolean not null,
      error text,
      next_attempt_at timestamptz,
      -- The log is read newest first, a page at a time.
      primary key (workspace_id, webhook_id, attempted_at, attempt_id)
    )`.execute(db);
  await sql`create index webhook_attempts_age on webhook_attempts (attempted_at)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ["webhook_attempts", "webhook_deliveries", "webhook_ended_workspaces", "webhook_health", "webhook_secrets", "webhooks"]) {
    await sql`drop table ${sql.table(t)}`.execute(db);
  }
  await dropProjectionBookkeeping(db);
}
