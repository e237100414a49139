import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.

/**
 * The folders a message is in (they overlap), as the read model defines them; `inbound` is
 * no folder of the API but the inbox list's `direction=inbound` (live inbound mail).
 */
const FOLDERS = sql`cross join lateral (values
    ('inbox', m.direction = 'inbound' and not m.is_archived and m.deleted_at is null),
    ('sent', m.direction = 'outbound' and m.deleted_at is null),
    ('starred', m.is_starred and m.deleted_at is null),
    ('archived', m.is_archived and m.deleted_at is null),
    ('trash', m.deleted_at is not null),
    ('inbound', m.direction = 'inbound' and m.deleted_at is null)
  ) f(folder, member)`;

/** Each list of messages, per scope kind (inbox, workspace, tenant), served by an index in its order. */
const FOLDER_PREDICATES: Record<string, string> = {
  inbox: "direction = 'inbound' and not is_archived and deleted_at is null",
  sent: "direction = 'outbound' and deleted_at is null",
  starred: "is_starred and deleted_at is null",
  archived: "is_archived and deleted_at is null",
  trash: "deleted_at is not null",
};

export async function up(db: Kysely<any>): Promise<void> {
  // One row per thread and folder it has a message in: the folder's newest message of the thread and its counts.
  await sql`create table thread_folders (
    workspace_id uuid not null,
    inbox_id uuid not null,
    thread_id uuid not null,
    folder text not null,
    tenant_id uuid not null,
    last_message_id uuid not null,
    last_message_at timestamptz not null,
    message_count integer not null,
    unread_count integer not null,
    constraint thread_folders_pk primary key (workspace_id, inbox_id, thread_id, folder)
  )`.execute(db);
  await sql`create index thread_folders_inbox_time on thread_folders (workspace_id, inbox_id, folder, last_message_at desc, last_message_id desc)`.execute(db);
  await sql`create index thread_folders_workspace_time on thread_folders (workspace_id, folder, last_message_at desc, last_message_id desc)`.execute(db);
  await sql`create index thread_folders_tenant_time on thread_folders (tenant_id, folder, last_message_at desc, last_message_id desc)`.execute(db);
  // Per inbox and folder: messages, unread ones, threads (sums of thread_folders, kept with it); and live drafts.
  await sql`create table folder_counts (
    workspace_id uuid not null,
    inbox_id uuid not null,
    folder text not null,
    total bigint not null,
    unread bigint not null,
    threads bigint not null,
    constraint folder_counts_pk primary key (workspace_id, inbox_id, folder)
  )`.execute(db);

  await sql`insert into thread_folders (workspace_id, inbox_id, thread_id, folder, tenant_id, last_message_id, last_message_at, message_count, unread_count)
    select m.workspace_id, m.inbox_id, m.thread_id, f.folder, m.tenant_id,
      (array_agg(m.message_id order by m.created_at desc, m.message_id desc))[1], max(m.created_at),
      count(*), count(*) filter (where not m.is_read)
    from messages m ${FOLDERS}
    where f.member
    group by m.workspace_id, m.inbox_id, m.thread_id, f.folder, m.tenant_id`.execute(db);
  await sql`insert into folder_counts (workspace_id, inbox_id, folder, total, unread, threads)
    select workspace_id, inbox_id, folder, sum(message_count), sum(unread_count), count(*)
    from thread_folders group by workspace_id, inbox_id, folder`.execute(db);
  await sql`insert into folder_counts (workspace_id, inbox_id, folder, total, unread, threads)
    select workspace_id, inbox_id, 'drafts', count(*), 0, 0 from drafts where deleted_at is null group by workspace_id, inbox_id`.execute(db);

  // is_read stays out of every index and predicate: marking read remains a HOT update.
  for (const [folder, where] of Object.entries(FOLDER_PREDICATES)) {
    await sql.raw(`create index messages_${folder}_by_inbox on messages (workspace_id, inbox_id, created_at desc, message_id desc) where ${where}`).execute(db);
    await sql.raw(`create index messages_${folder}_by_workspace on messages (workspace_id, created_at desc, message_id desc) where ${where}`).execute(db);
    await sql.raw(`create index messages_${folder}_by_tenant on messages (tenant_id, created_at desc, message_id desc) where ${where}`).execute(db);
  }
  // The inbox list with direction=inbound (outbound is the sent folder's index), and a thread of an inbox in order.
  await sql`create index messages_inbound_by_inbox on messages (workspace_id, inbox_id, created_at desc, message_id desc) where direction = 'inbound' and deleted_at is null`.execute(
    db,
  );
  await sql`create index messages_thread_of_inbox on messages (workspace_id, inbox_id, thread_id, created_at, message_id) where deleted_at is null`.execute(db);
  // Drafts newest first with the id as tie-break, so a page ends at an exact row.
  await sql`create index drafts_inbox_time on drafts (workspace_id, inbox_id, created_at desc, draft_id desc) where deleted_at is null`.execute(db);
  await sql`drop index drafts_inbox`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`create index drafts_inbox on drafts (workspace_id, inbox_id, created_at desc) where deleted_at is null`.execute(db);
  await sql`drop index drafts_inbox_time`.execute(db);
  await sql`drop index messages_thread_of_inbox`.execute(db);
  await sql`drop index messages_inbound_by_inbox`.execute(db);
  for (const folder of Object.keys(FOLDER_PREDICATES)) {
    for (const level of ["inbox", "workspace", "tenant"]) await sql.raw(`drop index messages_${folder}_by_${level}`).execute(db);
  }
  await sql`drop table folder_counts`.execute(db);
  await sql`drop table thread_folders`.execute(db);
}
