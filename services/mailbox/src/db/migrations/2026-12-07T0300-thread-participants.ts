import { type RawBuilder, sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.

/** The folders a message is in, as migration 2026-12-07T0100 files them (a copy: migrations never import app code). */
const FOLDERS = sql`cross join lateral (values
    ('inbox', m.direction = 'inbound' and not m.is_archived and m.deleted_at is null),
    ('sent', m.direction = 'outbound' and m.deleted_at is null),
    ('starred', m.is_starred and m.deleted_at is null),
    ('archived', m.is_archived and m.deleted_at is null),
    ('trash', m.deleted_at is not null),
    ('inbound', m.direction = 'inbound' and m.deleted_at is null)
  ) f(folder, member)`;

/**
 * The distinct non-empty strings of a jsonb array of arrays, as a sorted jsonb array: in byte
 * order (collation "C", the same on every server), so the projection's incremental union and
 * its recompute agree; lower-cased and the first `limit` only for participants.
 */
const setOf = (arrays: RawBuilder<unknown>, lowerCase: boolean, limit?: number) =>
  sql`(select coalesce(jsonb_agg(v order by v), '[]'::jsonb) from (
      select distinct ${lowerCase ? sql`lower(e)` : sql`e`} collate "C" as v
      from jsonb_array_elements_text(jsonb_path_query_array(${arrays}, 'strict $[*][*]')) e where e <> ''
      order by v ${limit ? sql`limit ${sql.lit(limit)}` : sql``}) s)`;

export async function up(db: Kysely<any>): Promise<void> {
  // Participants: senders and To/Cc recipients (never Bcc) of the thread's messages in the folder,
  // at most 50, so a thread mailed to thousands keeps a small row. Labels: of the same messages.
  await sql`alter table thread_folders add column participants jsonb not null default '[]', add column labels jsonb not null default '[]'`.execute(db);
  await sql`update thread_folders t set participants = a.participants, labels = a.labels
    from (
      select m.workspace_id, m.inbox_id, m.thread_id, f.folder,
        ${setOf(sql`jsonb_agg(jsonb_build_array(m.from_address) || m.to_addresses || m.cc_addresses)`, true, 50)} as participants,
        ${setOf(sql`jsonb_agg(m.labels)`, false)} as labels
      from messages m ${FOLDERS}
      where f.member
      group by m.workspace_id, m.inbox_id, m.thread_id, f.folder
    ) a
    where t.workspace_id = a.workspace_id and t.inbox_id = a.inbox_id and t.thread_id = a.thread_id and t.folder = a.folder`.execute(db);
  // The projection writes both on every row: no default to hide a write that forgot them.
  await sql`alter table thread_folders alter column participants drop default, alter column labels drop default`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table thread_folders drop column participants, drop column labels`.execute(db);
}
