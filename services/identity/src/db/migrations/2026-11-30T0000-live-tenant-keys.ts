import { sql, type Kysely } from "kysely";

// Frozen. Rotating or re-issuing a tenant's tk_ key reads that tenant's live tk_ keys;
// they share workspace_id with every other tenant's, so the primary key does not narrow it.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index api_keys_live_tenant_keys on api_keys (tenant_id) where kind = 'tenant' and revoked_at is null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index api_keys_live_tenant_keys`.execute(db);
}
