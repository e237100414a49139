import { type RawBuilder, sql, type Kysely } from "kysely";
import type { MailboxDb } from "../db/schema.ts";

/** A thread of an inbox whose messages changed (new, flagged, deleted). */
export interface ThreadKey {
  workspace_id: string;
  inbox_id: string;
  thread_id: string;
}

/**
 * The folders a message is in (they overlap), as read/mailbox-view.ts lists them; `inbound`
 * is the inbox list's `direction=inbound` (live inbound mail). Keep the two in step.
 */
const FOLDERS = sql`cross join lateral (values
    ('inbox', m.direction = 'inbound' and not m.is_archived and m.deleted_at is null),
    ('sent', m.direction = 'outbound' and m.deleted_at is null),
    ('starred', m.is_starred and m.deleted_at is null),
    ('archived', m.is_archived and m.deleted_at is null),
    ('trash', m.deleted_at is not null),
    ('inbound', m.direction = 'inbound' and m.deleted_at is null)
  ) f(folder, member)`;

/**
 * At most this many participants per thread row, so a thread mailed to thousands keeps a
 * small row: the first in byte order, which a union of capped sets keeps exactly as a
 * recompute from every message would (the first 50 of A ∪ B are among those of A and B).
 */
const MAX_PARTICIPANTS = 50;

/**
 * The distinct non-empty strings of a jsonb array of arrays, as a jsonb array sorted in byte
 * order (collation "C", the same on every server, so any path gives the same array);
 * lower-cased and capped for participants.
 */
const setOf = (arrays: RawBuilder<unknown>, lowerCase: boolean, limit?: number) =>
  sql`(select coalesce(jsonb_agg(v order by v), '[]'::jsonb) from (
      select distinct ${lowerCase ? sql`lower(e)` : sql`e`} collate "C" as v
      from jsonb_array_elements_text(jsonb_path_query_array(${arrays}, 'strict $[*][*]')) e where e <> ''
      order by v ${limit ? sql`limit ${sql.lit(limit)}` : sql``}) s)`;
/** Senders and To/Cc recipients (never Bcc), from arrays of addresses. */
const participantsOf = (arrays: RawBuilder<unknown>) => setOf(arrays, true, MAX_PARTICIPANTS);
const labelsOf = (arrays: RawBuilder<unknown>) => setOf(arrays, false);

/** Adds the rows' counts to their inboxes' folder counters, negated when `sign` is -1. */
const addToCounts = (sign: 1 | -1) => sql`
  insert into folder_counts (workspace_id, inbox_id, folder, total, unread, threads)
  select workspace_id, inbox_id, folder, ${sign} * sum(message_count), ${sign} * sum(unread_count), ${sign} * count(*)
  from changed group by workspace_id, inbox_id, folder
  on conflict (workspace_id, inbox_id, folder) do update set
    total = folder_counts.total + excluded.total,
    unread = folder_counts.unread + excluded.unread,
    threads = folder_counts.threads + excluded.threads`;

/**
 * Recomputes the thread rows (thread_folders) of these threads from their messages, and
 * moves the folder counters by the difference: the old rows' counts out, the new rows' in.
 * Two statements for any number of threads (a batch of filed mail); the work is bounded by
 * the threads' sizes, never by the inbox's. Exact whatever changed, and idempotent.
 * Projections of a tenant run under its lock, so nothing interleaves between the two.
 */
export async function refreshThreads(tx: Kysely<MailboxDb>, threads: ThreadKey[]): Promise<void> {
  const unique = [...new Map(threads.map((t) => [`${t.workspace_id}/${t.inbox_id}/${t.thread_id}`, t])).values()];
  if (!unique.length) return;
  const keys = sql`unnest(${unique.map((t) => t.workspace_id)}::uuid[], ${unique.map((t) => t.inbox_id)}::uuid[], ${unique.map((t) => t.thread_id)}::uuid[]) k(workspace_id, inbox_id, thread_id)`;
  await sql`
    with changed as (
      delete from thread_folders t using ${keys}
      where t.workspace_id = k.workspace_id and t.inbox_id = k.inbox_id and t.thread_id = k.thread_id
      returning t.workspace_id, t.inbox_id, t.folder, t.message_count, t.unread_count
    )
    ${addToCounts(-1)}`.execute(tx);
  await sql`
    with changed as (
      insert into thread_folders (workspace_id, inbox_id, thread_id, folder, tenant_id, last_message_id, last_message_at, message_count, unread_count,
        participants, labels)
      select m.workspace_id, m.inbox_id, m.thread_id, f.folder, m.tenant_id,
        (array_agg(m.message_id order by m.created_at desc, m.message_id desc))[1], max(m.created_at),
        count(*), count(*) filter (where not m.is_read),
        ${participantsOf(sql`jsonb_agg(jsonb_build_array(m.from_address) || m.to_addresses || m.cc_addresses)`)}, ${labelsOf(sql`jsonb_agg(m.labels)`)}
      from ${keys}
      join messages m on m.workspace_id = k.workspace_id and m.thread_id = k.thread_id and m.inbox_id = k.inbox_id
      ${FOLDERS}
      where f.member
      group by m.workspace_id, m.inbox_id, m.thread_id, f.folder, m.tenant_id
      returning workspace_id, inbox_id, folder, message_count, unread_count
    )
    ${addToCounts(1)}`.execute(tx);
}

/** A message just stored, as its thread's rows count it. */
export interface NewMessage extends ThreadKey {
  tenant_id: string;
  message_id: string;
  direction: "inbound" | "outbound";
  created_at: Date | string;
  from_address: string;
  to_addresses: string[];
  cc_addresses: string[];
  labels: string[];
}

/**
 * New mail added to its threads' rows and the counters without reading the threads: a new
 * message is unflagged and live, so it is in `inbox` and `inbound` (received, unread) or in
 * `sent` (read), as FOLDERS files it. One statement per table for the whole batch, however
 * long the threads are; participants and labels join the row's as a union of sets, capped
 * alike. `rows` are the messages the insert stored (a replayed one is not).
 */
export async function addNewMessages(tx: Kysely<MailboxDb>, rows: NewMessage[]): Promise<void> {
  type Group = {
    k: ThreadKey & { tenant_id: string; folder: string };
    n: number;
    unread: number;
    at: string;
    id: string;
    addresses: string[][];
    labels: string[][];
  };
  const groups = new Map<string, Group>();
  for (const m of rows) {
    const at = new Date(m.created_at).toISOString();
    for (const folder of m.direction === "inbound" ? ["inbox", "inbound"] : ["sent"]) {
      const key = `${m.workspace_id}/${m.inbox_id}/${m.thread_id}/${folder}`;
      const g = groups.get(key) ?? { k: { ...m, folder }, n: 0, unread: 0, at, id: m.message_id, addresses: [], labels: [] };
      g.n += 1;
      if (m.direction === "inbound") g.unread += 1;
      g.addresses.push([m.from_address, ...m.to_addresses, ...m.cc_addresses]);
      g.labels.push(m.labels);
      if (at > g.at || (at === g.at && m.message_id > g.id)) Object.assign(g, { at, id: m.message_id });
      groups.set(key, g);
    }
  }
  const gs = [...groups.values()];
  if (!gs.length) return;
  const col = <T>(f: (g: (typeof gs)[number]) => T) => gs.map(f);
  await sql`
    with changed as (
      insert into thread_folders as t (workspace_id, inbox_id, thread_id, folder, tenant_id, last_message_id, last_message_at, message_count, unread_count,
        participants, labels)
      select u.workspace_id, u.inbox_id, u.thread_id, u.folder, u.tenant_id, u.last_message_id, u.last_message_at, u.message_count, u.unread_count,
        ${participantsOf(sql`u.addresses`)}, ${labelsOf(sql`u.labels`)}
      from unnest(${col((g) => g.k.workspace_id)}::uuid[], ${col((g) => g.k.inbox_id)}::uuid[], ${col((g) => g.k.thread_id)}::uuid[],
        ${col((g) => g.k.folder)}::text[], ${col((g) => g.k.tenant_id)}::uuid[], ${col((g) => g.id)}::uuid[], ${col((g) => g.at)}::timestamptz[],
        ${col((g) => g.n)}::int[], ${col((g) => g.unread)}::int[], ${col((g) => JSON.stringify(g.addresses))}::jsonb[], ${col((g) => JSON.stringify(g.labels))}::jsonb[])
        u(workspace_id, inbox_id, thread_id, folder, tenant_id, last_message_id, last_message_at, message_count, unread_count, addresses, labels)
      on conflict (workspace_id, inbox_id, thread_id, folder) do update set
        participants = ${participantsOf(sql`jsonb_build_array(t.participants, excluded.participants)`)},
        labels = ${labelsOf(sql`jsonb_build_array(t.labels, excluded.labels)`)},
        message_count = t.message_count + excluded.message_count,
        unread_count = t.unread_count + excluded.unread_count,
        last_message_id = case when (excluded.last_message_at, excluded.last_message_id) > (t.last_message_at, t.last_message_id)
          then excluded.last_message_id else t.last_message_id end,
        last_message_at = greatest(t.last_message_at, excluded.last_message_at)
      -- xmax is 0 on a row this statement inserted: a thread new to the folder.
      returning workspace_id, inbox_id, folder, (xmax = 0)::int as new_thread
    ), added as (
      select * from unnest(${col((g) => g.k.workspace_id)}::uuid[], ${col((g) => g.k.inbox_id)}::uuid[], ${col((g) => g.k.folder)}::text[],
        ${col((g) => g.n)}::int[], ${col((g) => g.unread)}::int[]) a(workspace_id, inbox_id, folder, n, unread)
    ), delta as (
      select workspace_id, inbox_id, folder, n as total, unread, 0 as threads from added
      union all
      select workspace_id, inbox_id, folder, 0, 0, new_thread from changed
    )
    insert into folder_counts (workspace_id, inbox_id, folder, total, unread, threads)
    select workspace_id, inbox_id, folder, sum(total), sum(unread), sum(threads) from delta group by workspace_id, inbox_id, folder
    on conflict (workspace_id, inbox_id, folder) do update set
      total = folder_counts.total + excluded.total,
      unread = folder_counts.unread + excluded.unread,
      threads = folder_counts.threads + excluded.threads`.execute(tx);
}
