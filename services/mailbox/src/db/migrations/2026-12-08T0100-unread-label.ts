import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
// The label "unread" follows isRead on received mail (it was set when a message was filed and
// never taken off): off the messages read, on those marked unread again; a thread row's labels
// are the union of its messages', so it has "unread" exactly when it counts an unread message.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`update messages set labels = labels - 'unread' where is_read and labels ? 'unread'`.execute(db);
  await sql`update messages set labels = labels || '["unread"]'::jsonb
    where not is_read and direction = 'inbound' and not labels ? 'unread'`.execute(db);
  await sql`update thread_folders set labels = labels - 'unread' where unread_count = 0 and labels ? 'unread'`.execute(db);
}

export async function down(): Promise<void> {
  // Nothing to undo: the labels stay as the rule keeps them.
}
