import { sql, type Kysely } from "kysely";

// Frozen. Inboxes, domains, an inbox's lists and a list's entries are listed a page at a
// time in (created_at, id) order, after a cursor's row: each index below serves its list in
// that order, so a page reads its rows and no more (the older indexes lack the id, or the time).
// Inboxes and domains have two: a tk_ key lists the tenant's, a wk_ key (or the `workspace`
// filter) one workspace's. A workspace's query names its tenant too; without statistics that
// say a workspace implies its tenant, the planner takes the two as independent, expects a
// tiny result, and reads and sorts it all rather than take the index in order.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index inboxes_live_by_tenant on inboxes (tenant_id, created_at, inbox_id) where deleted_at is null`.execute(db);
  await sql`create index inboxes_live_by_workspace on inboxes (workspace_id, created_at, inbox_id) where deleted_at is null`.execute(db);
  await sql`create index domains_live_by_tenant_created on domains (tenant_id, created_at, domain_id) where deleted_at is null`.execute(db);
  await sql`create index domains_live_by_workspace on domains (workspace_id, created_at, domain_id) where deleted_at is null`.execute(db);
  for (const t of ["inboxes", "domains"]) {
    await sql`create statistics ${sql.id(`${t}_workspace_tenant`)} (dependencies) on workspace_id, tenant_id from ${sql.table(t)}`.execute(db);
  }
  await sql`create index lists_live_by_inbox on lists (workspace_id, inbox_id, created_at, list_id) where deleted_at is null`.execute(db);
  await sql`create index list_entries_by_list on list_entries (workspace_id, list_id, created_at, entry_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const i of [
    "inboxes_live_by_tenant",
    "inboxes_live_by_workspace",
    "domains_live_by_tenant_created",
    "domains_live_by_workspace",
    "lists_live_by_inbox",
    "list_entries_by_list",
  ]) {
    await sql`drop index ${sql.id(i)}`.execute(db);
  }
  for (const t of ["inboxes", "domains"]) await sql`drop statistics ${sql.id(`${t}_workspace_tenant`)}`.execute(db);
}
