import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
// The metrics counters, kept from the event stream. `metric_counters` holds cumulative rows per
// scope (a workspace or an inbox) and kind, keyed by time: a count over [from, to) is two index
// lookups. The directory rows say which tenant a workspace belongs to and which workspace an
// inbox; `metric_messages` which inbox a sent message left from (a bounce names the message only).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table metric_workspaces (
      workspace_id uuid not null primary key,
      tenant_id uuid not null
    )`.execute(db);
  await sql`create index metric_workspaces_by_tenant on metric_workspaces (tenant_id)`.execute(db);
  await sql`
    create table metric_inboxes (
      inbox_id uuid not null primary key,
      workspace_id uuid not null,
      tenant_id uuid not null,
      deleted boolean not null
    )`.execute(db);
  await sql`
    create table metric_messages (
      message_id uuid not null primary key,
      workspace_id uuid not null,
      inbox_id uuid not null,
      bounced boolean not null
    )`.execute(db);
  await sql`
    create table metric_counters (
      scope_id uuid not null,
      kind text not null,
      at timestamptz not null,
      cum bigint not null,
      primary key (scope_id, kind, at)
    )`.execute(db);
  await sql`create table metric_applied (event_id uuid not null primary key)`.execute(db);
  await sql`
    create table metric_checkpoint (
      consumer text not null primary key,
      stream_seq bigint not null
    )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ["metric_checkpoint", "metric_applied", "metric_counters", "metric_messages", "metric_inboxes", "metric_workspaces"]) {
    await sql`drop table ${sql.table(t)}`.execute(db);
  }
}
