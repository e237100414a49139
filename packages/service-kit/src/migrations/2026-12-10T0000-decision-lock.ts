import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
// A command's locks and its rebuild check in one round trip (see lockForDecision in
// rebuild.ts). The check must read what was committed once both locks are held: a rebuild
// that emptied the read model and committed while the command waited for the shared lock has
// to be seen. One SQL statement reads what was committed when it began, before its waits; a
// volatile function takes a fresh snapshot for each statement in it, so the check here
// begins after the locks are granted. Unqualified names resolve in the caller's schema, the
// service's own, as every other statement of the transaction does.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function lock_for_decision(tenant_key bigint, rebuild_key bigint, record text) returns boolean
    language plpgsql volatile as $$
    begin
      perform pg_advisory_xact_lock(tenant_key);
      perform pg_advisory_xact_lock_shared(rebuild_key);
      return exists (select 1 from projection_checkpoint where projection = record);
    end
    $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function if exists lock_for_decision(bigint, bigint, text)`.execute(db);
}
