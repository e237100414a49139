import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("tenants")
    .addColumn("tenant_id", "uuid", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("default_workspace_id", "uuid", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("workspaces")
    .addColumn("workspace_id", "uuid", (c) => c.primaryKey())
    .addColumn("tenant_id", "uuid", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("slug", "text", (c) => c.notNull())
    .addColumn("is_default", "boolean", (c) => c.notNull())
    .addColumn("inbox_count", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("domain_count", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("deleted_at", "timestamptz")
    .execute();
  // Slugs are unique per tenant among live workspaces; the tenant is the natural lead here.
  await sql`create unique index workspaces_tenant_slug on workspaces (tenant_id, slug) where deleted_at is null`.execute(db);
  await sql`create index workspaces_tenant_created on workspaces (tenant_id, created_at, workspace_id)`.execute(db);

  await db.schema
    .createTable("api_keys")
    .addColumn("workspace_id", "uuid", (c) => c.notNull())
    .addColumn("key_id", "uuid", (c) => c.notNull())
    .addColumn("tenant_id", "uuid")
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("name", "text")
    .addColumn("prefix", "text", (c) => c.notNull())
    .addColumn("key_hash", "text", (c) => c.notNull())
    .addColumn("inbox_id", "uuid")
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("revoked_at", "timestamptz")
    .addPrimaryKeyConstraint("api_keys_pk", ["workspace_id", "key_id"])
    .execute();
  await sql`create unique index api_keys_hash on api_keys (key_hash)`.execute(db);

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
  for (const t of ["projection_checkpoint", "applied_events", "api_keys", "workspaces", "tenants"]) {
    await db.schema.dropTable(t).execute();
  }
}
