import type { Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<any>): Promise<void> {
  // Workspaces the mailbox heard were deleted: nothing is created in them any more.
  await db.schema
    .createTable("closed_workspaces")
    .addColumn("workspace_id", "uuid", (c) => c.primaryKey())
    .addColumn("tenant_id", "uuid", (c) => c.notNull())
    .addColumn("closed_at", "timestamptz", (c) => c.notNull())
    .execute();
  // Global on purpose, like address_claims: an address released by one tenant is held back
  // from the others for a while, whoever asks.
  await db.schema
    .createTable("address_quarantine")
    .addColumn("address", "text", (c) => c.primaryKey())
    .addColumn("tenant_id", "uuid", (c) => c.notNull())
    .addColumn("released_at", "timestamptz", (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("address_quarantine").execute();
  await db.schema.dropTable("closed_workspaces").execute();
}
