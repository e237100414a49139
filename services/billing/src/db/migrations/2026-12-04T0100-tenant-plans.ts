import { sql, type Kysely } from "kysely";
import { createProjectionBookkeeping, dropProjectionBookkeeping } from "@mam/service-kit/bookkeeping-tables.ts";

// Frozen: never edit a migration that has shipped; add a new one.
// Each tenant's plan and the limits it was last told (the read model of TenantPlanChanged),
// and the bookkeeping of billing's own events' read model (each event once, checkpoints).
export async function up(db: Kysely<any>): Promise<void> {
  await createProjectionBookkeeping(db);
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
  await sql`drop table if exists tenant_plans`.execute(db);
  await dropProjectionBookkeeping(db);
}
