import { sql, type Kysely } from "kysely";

// Frozen. What became of each recipient of a sent message (a projection of MessageDelivered
// and MessageBounced): a retry sends only to the recipients still without an outcome.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("delivery_outcomes")
    .addColumn("workspace_id", "uuid", (c) => c.notNull())
    .addColumn("message_id", "uuid", (c) => c.notNull())
    .addColumn("recipient", "text", (c) => c.notNull())
    .addColumn("outcome", "text", (c) => c.notNull().check(sql`outcome in ('delivered', 'bounced')`))
    .addColumn("at", "timestamptz", (c) => c.notNull())
    .addPrimaryKeyConstraint("delivery_outcomes_pk", ["workspace_id", "message_id", "recipient"])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("delivery_outcomes").execute();
}
