import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("drafts")
    .addColumn("workspace_id", "uuid", (c) => c.notNull())
    .addColumn("draft_id", "uuid", (c) => c.notNull())
    .addColumn("inbox_id", "uuid", (c) => c.notNull())
    .addColumn("fields", "jsonb", (c) => c.notNull())
    .addColumn("version", "integer", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .addColumn("deleted_at", "timestamptz")
    .addPrimaryKeyConstraint("drafts_pk", ["workspace_id", "draft_id"])
    .execute();
  await sql`create index drafts_inbox on drafts (workspace_id, inbox_id, created_at desc) where deleted_at is null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("drafts").execute();
}
