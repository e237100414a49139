import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("lists")
    .addColumn("workspace_id", "uuid", (c) => c.notNull())
    .addColumn("list_id", "uuid", (c) => c.notNull())
    .addColumn("inbox_id", "uuid", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("description", "text")
    .addColumn("version", "integer", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .addColumn("deleted_at", "timestamptz")
    .addPrimaryKeyConstraint("lists_pk", ["workspace_id", "list_id"])
    .execute();
  await sql`create index lists_inbox on lists (workspace_id, inbox_id, created_at) where deleted_at is null`.execute(db);

  await db.schema
    .createTable("list_entries")
    .addColumn("workspace_id", "uuid", (c) => c.notNull())
    .addColumn("list_id", "uuid", (c) => c.notNull())
    .addColumn("entry_id", "uuid", (c) => c.notNull())
    .addColumn("email", "text", (c) => c.notNull())
    .addColumn("display_name", "text")
    .addColumn("metadata", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addPrimaryKeyConstraint("list_entries_pk", ["workspace_id", "list_id", "entry_id"])
    .execute();
  await sql`create unique index list_entries_email on list_entries (workspace_id, list_id, email)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("list_entries").execute();
  await db.schema.dropTable("lists").execute();
}
