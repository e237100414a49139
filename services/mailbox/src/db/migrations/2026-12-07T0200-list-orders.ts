import { sql, type Kysely } from "kysely";

// Frozen. Inboxes, domains, an inbox's lists and a list's entries are listed a page at a
// time in (created_at, id) order, after a cursor's row: each index below serves its list in
// that order, so a page reads its rows and no more (the older indexes lack the id, or the time).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index inboxes_live_by_tenant on inboxes (tenant_id, created_at, inbox_id) where deleted_at is null`.execute(db);
  await sql`create index domains_live_by_tenant_created on domains (tenant_id, created_at, domain_id) where deleted_at is null`.execute(db);
  await sql`create index lists_live_by_inbox on lists (workspace_id, inbox_id, created_at, list_id) where deleted_at is null`.execute(db);
  await sql`create index list_entries_by_list on list_entries (workspace_id, list_id, created_at, entry_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const i of ["inboxes_live_by_tenant", "domains_live_by_tenant_created", "lists_live_by_inbox", "list_entries_by_list"]) {
    await sql`drop index ${sql.id(i)}`.execute(db);
  }
}
