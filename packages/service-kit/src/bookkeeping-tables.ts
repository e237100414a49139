import { sql, type Kysely } from "kysely";

/**
 * The tables an event-sourced service's own read model keeps beside its rows: which events
 * a projection applied (each once) and how far it is in the stream, per tenant. For a
 * migration's `up`; `dropProjectionBookkeeping` for its `down`.
 */
export async function createProjectionBookkeeping(db: Kysely<any>): Promise<void> {
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
}

export async function dropProjectionBookkeeping(db: Kysely<any>): Promise<void> {
  for (const t of ["projection_checkpoint", "applied_events"]) await sql`drop table if exists ${sql.table(t)}`.execute(db);
}
