import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("threads")
    .addColumn("workspace_id", "uuid", (c) => c.notNull())
    .addColumn("thread_id", "uuid", (c) => c.notNull())
    .addColumn("inbox_id", "uuid", (c) => c.notNull())
    .addColumn("subject", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("last_message_at", "timestamptz", (c) => c.notNull())
    .addPrimaryKeyConstraint("threads_pk", ["workspace_id", "thread_id"])
    .execute();

  await db.schema
    .createTable("messages")
    .addColumn("workspace_id", "uuid", (c) => c.notNull())
    .addColumn("message_id", "uuid", (c) => c.notNull())
    .addColumn("inbox_id", "uuid", (c) => c.notNull())
    .addColumn("tenant_id", "uuid", (c) => c.notNull())
    .addColumn("thread_id", "uuid", (c) => c.notNull())
    .addColumn("direction", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("from_address", "text", (c) => c.notNull())
    .addColumn("from_name", "text")
    .addColumn("to_addresses", "jsonb", (c) => c.notNull())
    .addColumn("cc_addresses", "jsonb", (c) => c.notNull())
    .addColumn("bcc_addresses", "jsonb", (c) => c.notNull())
    .addColumn("reply_to", "text")
    .addColumn("subject", "text", (c) => c.notNull())
    .addColumn("preview", "text", (c) => c.notNull())
    .addColumn("plain_hash", "text")
    .addColumn("html_hash", "text")
    .addColumn("raw_hash", "text", (c) => c.notNull())
    .addColumn("raw_size", "integer", (c) => c.notNull())
    .addColumn("message_id_header", "text", (c) => c.notNull())
    .addColumn("in_reply_to", "text")
    .addColumn("references", "jsonb", (c) => c.notNull())
    .addColumn("attachments", "jsonb", (c) => c.notNull())
    .addColumn("labels", "jsonb", (c) => c.notNull())
    .addColumn("is_read", "boolean", (c) => c.notNull())
    .addColumn("is_starred", "boolean", (c) => c.notNull().defaultTo(false))
    .addColumn("is_archived", "boolean", (c) => c.notNull().defaultTo(false))
    .addColumn("source_message_id", "uuid")
    .addColumn("version", "integer", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .addColumn("deleted_at", "timestamptz")
    .addPrimaryKeyConstraint("messages_pk", ["workspace_id", "message_id"])
    .execute();
  await sql`create index messages_inbox_time on messages (workspace_id, inbox_id, created_at desc, message_id desc) where deleted_at is null`.execute(db);
  await sql`create index messages_header on messages (workspace_id, inbox_id, message_id_header)`.execute(db);
  await sql`create index messages_thread on messages (workspace_id, thread_id, created_at)`.execute(db);
  await sql`create index messages_from on messages (workspace_id, inbox_id, from_address) where direction = 'inbound'`.execute(db);

  // Stores, not projections: bytes by content hash, and the answers of idempotent sends.
  await db.schema
    .createTable("blobs")
    .addColumn("workspace_id", "uuid", (c) => c.notNull())
    .addColumn("hash", "text", (c) => c.notNull())
    .addColumn("size", "integer", (c) => c.notNull())
    .addColumn("data", "bytea", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addPrimaryKeyConstraint("blobs_pk", ["workspace_id", "hash"])
    .execute();
  await db.schema
    .createTable("idempotency_keys")
    .addColumn("workspace_id", "uuid", (c) => c.notNull())
    .addColumn("inbox_id", "uuid", (c) => c.notNull())
    .addColumn("key", "text", (c) => c.notNull())
    .addColumn("request_hash", "text", (c) => c.notNull())
    .addColumn("response", "jsonb", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addPrimaryKeyConstraint("idempotency_keys_pk", ["workspace_id", "inbox_id", "key"])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ["idempotency_keys", "blobs", "messages", "threads"]) await db.schema.dropTable(t).execute();
}
