import { sql, type Kysely } from "kysely";

// Frozen. What the last try of each waiting recipient met (delivery_queue.deferred, a list
// of { recipients, reason }), and why a recipient bounced (delivery_outcomes.reason): what
// the API says about each recipient. Outgoing messages by id alone, for the bounces whose
// return path names them.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable("delivery_queue")
    .addColumn("deferred", "jsonb", (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .execute();
  await db.schema.alterTable("delivery_outcomes").addColumn("reason", "text").execute();
  await sql`create index messages_outbound_id on messages (message_id) where direction = 'outbound'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index messages_outbound_id`.execute(db);
  await db.schema.alterTable("delivery_outcomes").dropColumn("reason").execute();
  await db.schema.alterTable("delivery_queue").dropColumn("deferred").execute();
}
