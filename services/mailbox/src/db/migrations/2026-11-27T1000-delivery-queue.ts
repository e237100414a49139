import { sql, type Kysely } from "kysely";

// Frozen. Sent messages with recipients still to try (refused for now, unreachable), and
// when to try next. A store, not a projection: the retries' own bookkeeping.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("delivery_queue")
    .addColumn("workspace_id", "uuid", (c) => c.notNull())
    .addColumn("message_id", "uuid", (c) => c.notNull())
    .addColumn("tenant_id", "uuid", (c) => c.notNull())
    .addColumn("attempts", "integer", (c) => c.notNull())
    .addColumn("next_try_at", "timestamptz", (c) => c.notNull())
    .addColumn("last_error", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("delivery_queue_pk", ["workspace_id", "message_id"])
    .execute();
  await sql`create index delivery_queue_due on delivery_queue (next_try_at)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("delivery_queue").execute();
}
