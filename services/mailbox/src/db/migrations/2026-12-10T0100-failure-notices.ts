import { sql, type Kysely } from "kysely";

// Frozen. Delivery status notifications (bounces) the platform owes: mail accepted over SMTP
// for an inbox deleted a moment before (smtp-ingress heard of it after answering 250). Each
// is tried until the sender's server took it, refused it, or the give-up age passed; then it
// is settled (its bytes dropped) and kept a week, so that the same message handled again
// (a crash before its acknowledgement) owes nothing more. A store, not a projection: the
// notices' own bookkeeping, never rebuilt from events.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("failure_notices")
    // Derived from the accepted message's dedupe key: the same message redelivered owes one notice.
    .addColumn("notice_id", "uuid", (c) => c.primaryKey())
    .addColumn("queue_id", "text", (c) => c.notNull())
    .addColumn("recipient", "text", (c) => c.notNull())
    .addColumn("raw", "bytea", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("next_try_at", "timestamptz", (c) => c.notNull())
    .addColumn("last_error", "text")
    // The replica sending it now, until its lease runs out (next_try_at).
    .addColumn("lease", "uuid")
    // When it was delivered, refused or given up: no longer tried.
    .addColumn("settled_at", "timestamptz")
    .execute();
  await sql`create index failure_notices_due on failure_notices (next_try_at) where settled_at is null`.execute(db);
  await sql`create index failure_notices_settled on failure_notices (settled_at) where settled_at is not null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("failure_notices").execute();
}
