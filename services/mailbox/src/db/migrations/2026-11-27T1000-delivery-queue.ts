import { sql, type Kysely } from "kysely";

// Frozen. Sent messages with recipients still to try (refused for now, unreachable), or
// with outcomes still to record, and when to look again. A store, not a projection: the
// retries' own bookkeeping.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("delivery_queue")
    .addColumn("workspace_id", "uuid", (c) => c.notNull())
    .addColumn("message_id", "uuid", (c) => c.notNull())
    .addColumn("tenant_id", "uuid", (c) => c.notNull())
    .addColumn("attempts", "integer", (c) => c.notNull())
    .addColumn("next_try_at", "timestamptz", (c) => c.notNull())
    .addColumn("last_error", "text", (c) => c.notNull())
    // The replica working on the row now, until its lease runs out (next_try_at).
    .addColumn("lease", "uuid")
    // Outcomes a server gave that could not be recorded yet (the event store was down):
    // kept here so that those recipients are recorded later, never sent to again.
    .addColumn("unrecorded", "jsonb", (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addPrimaryKeyConstraint("delivery_queue_pk", ["workspace_id", "message_id"])
    .execute();
  await sql`create index delivery_queue_due on delivery_queue (next_try_at)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("delivery_queue").execute();
}
