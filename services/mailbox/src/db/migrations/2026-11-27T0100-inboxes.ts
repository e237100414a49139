import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("inboxes")
    .addColumn("workspace_id", "uuid", (c) => c.notNull())
    .addColumn("inbox_id", "uuid", (c) => c.notNull())
    .addColumn("tenant_id", "uuid", (c) => c.notNull())
    .addColumn("username", "text", (c) => c.notNull())
    .addColumn("domain", "text", (c) => c.notNull())
    .addColumn("canonical_email", "text", (c) => c.notNull())
    .addColumn("display_name", "text")
    .addColumn("metadata", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn("version", "integer", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .addColumn("deleted_at", "timestamptz")
    .addPrimaryKeyConstraint("inboxes_pk", ["workspace_id", "inbox_id"])
    .execute();
  // Paths name an inbox by id alone (a tenant key does not say which workspace).
  await sql`create unique index inboxes_id on inboxes (inbox_id)`.execute(db);
  await sql`create index inboxes_tenant on inboxes (tenant_id, created_at) where deleted_at is null`.execute(db);

  await db.schema
    .createTable("inbox_addresses")
    .addColumn("workspace_id", "uuid", (c) => c.notNull())
    .addColumn("inbox_id", "uuid", (c) => c.notNull())
    .addColumn("address", "text", (c) => c.notNull())
    .addColumn("is_primary", "boolean", (c) => c.notNull())
    .addColumn("is_canonical", "boolean", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addPrimaryKeyConstraint("inbox_addresses_pk", ["workspace_id", "inbox_id", "address"])
    .execute();

  // Global on purpose: an address is unique across every tenant.
  await db.schema
    .createTable("address_claims")
    .addColumn("address", "text", (c) => c.primaryKey())
    .addColumn("tenant_id", "uuid", (c) => c.notNull())
    .addColumn("workspace_id", "uuid", (c) => c.notNull())
    .addColumn("inbox_id", "uuid", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("applied_events")
    .addColumn("workspace_id", "uuid", (c) => c.notNull())
    .addColumn("event_id", "uuid", (c) => c.notNull())
    .addColumn("stream_seq", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("applied_events_pk", ["workspace_id", "event_id"])
    .execute();
  await db.schema
    .createTable("projection_checkpoint")
    .addColumn("projection", "text", (c) => c.primaryKey())
    .addColumn("stream_seq", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ["projection_checkpoint", "applied_events", "address_claims", "inbox_addresses", "inboxes"]) {
    await db.schema.dropTable(t).execute();
  }
}
