import { sql, type Kysely } from "kysely";

// Frozen. A revoked key's hash must not block issuing the same key again (an operator
// going back to an earlier SUPER_ADMIN_KEY): only live keys need a unique hash.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`drop index api_keys_hash`.execute(db);
  await sql`create unique index api_keys_live_hash on api_keys (key_hash) where revoked_at is null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index api_keys_live_hash`.execute(db);
  await sql`create unique index api_keys_hash on api_keys (key_hash)`.execute(db);
}
