import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("domains")
    .addColumn("workspace_id", "uuid", (c) => c.notNull())
    .addColumn("domain_id", "uuid", (c) => c.notNull())
    .addColumn("tenant_id", "uuid", (c) => c.notNull())
    .addColumn("domain", "text", (c) => c.notNull())
    .addColumn("selector", "text", (c) => c.notNull())
    .addColumn("dkim_public_key", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("records", "jsonb", (c) => c.notNull())
    .addColumn("version", "integer", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .addColumn("verified_at", "timestamptz")
    .addColumn("deleted_at", "timestamptz")
    .addPrimaryKeyConstraint("domains_pk", ["workspace_id", "domain_id"])
    .execute();
  await sql`create unique index domains_id on domains (domain_id)`.execute(db);
  await sql`create index domains_name on domains (domain) where deleted_at is null`.execute(db);

  // Global on purpose: a domain belongs to one workspace at most.
  await db.schema
    .createTable("domain_claims")
    .addColumn("domain", "text", (c) => c.primaryKey())
    .addColumn("workspace_id", "uuid", (c) => c.notNull())
    .addColumn("domain_id", "uuid", (c) => c.notNull())
    .execute();

  // A store, not a projection: private keys never travel in events, and a replay keeps them.
  await db.schema
    .createTable("dkim_keys")
    .addColumn("key_ref", "text", (c) => c.primaryKey())
    .addColumn("selector", "text", (c) => c.notNull())
    .addColumn("private_key_pem", "text", (c) => c.notNull())
    .addColumn("public_key", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ["dkim_keys", "domain_claims", "domains"]) await db.schema.dropTable(t).execute();
}
