import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
// Each tenant's plan and the limits it was last told (the read model of TenantPlanChanged),
// and the bookkeeping of billing's own events' read model (each event once, checkpoints).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table applied_events (
      workspace_id uuid not null,
      event_id uuid not null,
      stream_seq bigint not null,
      primary key (workspace_id, event_id)
    )`.execute(db);
  await sql`
    create table projection_checkpoint (
      projection text not null,
      tenant_key text not null,
      stream_seq bigint not null,
      updated_at timestamptz not null,
      primary key (projection, tenant_key)
    )`.execute(db);
  await sql`
    create table tenant_plans (
      tenant_id uuid not null primary key,
      plan_id text not null,
      limits jsonb not null,
      version integer not null,
      updated_at timestamptz not null
    )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ["tenant_plans", "projection_checkpoint", "applied_events"]) await sql`drop table if exists ${sql.table(t)}`.execute(db);
}
