import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
// The WebSocket door's directory: which tenant a workspace belongs to and which workspace an
// inbox, so a subscribe frame naming one is checked against the key's scope. Deleted rows stay
// as tombstones (a late WorkspaceCreated or InboxCreated must not bring one back). Each
// consumer's checkpoint tells a directory that was dropped, to be rebuilt from the stream.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table ws_workspaces (
      workspace_id uuid not null primary key,
      tenant_id uuid not null,
      deleted boolean not null
    )`.execute(db);
  await sql`
    create table ws_inboxes (
      workspace_id uuid not null,
      inbox_id uuid not null,
      tenant_id uuid not null,
      deleted boolean not null,
      primary key (workspace_id, inbox_id)
    )`.execute(db);
  // A subscribe frame names the inbox alone: its workspace is what the lookup finds out.
  await sql`create unique index ws_inboxes_by_inbox on ws_inboxes (inbox_id)`.execute(db);
  await sql`
    create table ws_directory_checkpoint (
      consumer text not null primary key,
      stream_seq bigint not null
    )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table ws_directory_checkpoint`.execute(db);
  await sql`drop table ws_inboxes`.execute(db);
  await sql`drop table ws_workspaces`.execute(db);
}
