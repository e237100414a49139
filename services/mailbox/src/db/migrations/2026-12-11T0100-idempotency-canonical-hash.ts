import type { Kysely } from "kysely";

// Frozen. A send's Idempotency-Key record keeps two hashes of its request: `request_hash` of the
// body as the client wrote it (what releases before this one compare, so an identical retry
// that lands on one during a rolling upgrade, or after a rollback, is still answered), and
// `canonical_hash` of the request as parsed, in canonical JSON (the same request written
// another way: its fields in another order, an address alone or in a list). Null in the
// records made before.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("idempotency_keys").addColumn("canonical_hash", "text").execute();
}
