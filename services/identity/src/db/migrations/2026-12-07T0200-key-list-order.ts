import { sql, type Kysely } from "kysely";

// Frozen. A workspace's keys are listed a page at a time in (created_at, key_id) order;
// the primary key (workspace_id, key_id) finds them but not in that order.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index api_keys_live_by_workspace on api_keys (workspace_id, created_at, key_id) where revoked_at is null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index api_keys_live_by_workspace`.execute(db);
}
