import { type AliasedSelectQueryBuilder, sql, type Kysely, type SelectQueryBuilder } from "kysely";
import { parseOrThrow } from "@mam/contracts/errors.ts";
import { FolderCountsQuery, MailboxViewQuery } from "@mam/contracts/messages-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import { cursorKeys, keyInstant, pageOf, paginationOf, pastKeys, type RowKeys } from "@mam/service-kit/keyset.ts";
import { inViewScope, viewScope, type ViewScope } from "./view-scope.ts";

export type Folder = "inbox" | "sent" | "starred" | "archived" | "trash";
type Q = SelectQueryBuilder<MailboxDb, "messages", object>;
/** A page as the queries take it: after the cursor's row (if any), `offset` rows skipped, one row more than `limit` (see pageOf). */
export interface PageAt {
  limit: number;
  offset: number;
  after: RowKeys | undefined;
}

/**
 * The folders (they overlap). Each predicate is one of the partial indexes of migration
 * 2026-12-07T0100 word for word, and projections/thread-folders.ts files messages by the same rules.
 */
function inFolder(q: Q, folder: Folder): Q {
  switch (folder) {
    case "inbox":
      return q.where("messages.direction", "=", "inbound").where("messages.is_archived", "=", false).where("messages.deleted_at", "is", null);
    case "sent":
      return q.where("messages.direction", "=", "outbound").where("messages.deleted_at", "is", null);
    case "starred":
      return q.where("messages.is_starred", "=", true).where("messages.deleted_at", "is", null);
    case "archived":
      return q.where("messages.is_archived", "=", true).where("messages.deleted_at", "is", null);
    case "trash":
      return q.where("messages.deleted_at", "is not", null);
    default: {
      const unreachable: never = folder;
      throw new Error(`unknown folder ${String(unreachable)}`);
    }
  }
}

const COLUMNS = [
  "messages.message_id",
  "messages.inbox_id",
  "messages.thread_id",
  "messages.direction",
  "messages.from_address",
  "messages.from_name",
  "messages.to_addresses",
  "messages.subject",
  "messages.preview",
  "messages.is_read",
  "messages.is_starred",
  "messages.is_archived",
  "messages.created_at",
] as const;

/**
 * Mail of deleted inboxes is left out by an anti-join, not by joining the live ones: the
 * planner then expects (rightly) nearly every row in scope to stay, and reads the index in
 * order until the page is full; joined, it multiplies the selectivities and sorts instead.
 */
const inLiveInbox = (table: "messages" | "tf", s: ViewScope) =>
  s.kind === "inbox" // viewScope found it live
    ? sql<boolean>`true`
    : sql<boolean>`not exists (select from inboxes d where d.workspace_id = ${sql.ref(`${table}.workspace_id`)} and d.inbox_id = ${sql.ref(`${table}.inbox_id`)} and d.deleted_at is not null)`;

/**
 * The list's length from the counters (`total` or `threads` of the folder), as a column of the
 * page's rows: an InitPlan run once beside the page, so a page and its total are one statement.
 */
const listTotal = (db: Kysely<MailboxDb>, s: ViewScope, folder: Folder, counter: "total" | "threads") =>
  sql<string | null>`(${countsQuery(db, s)
    .clearSelect()
    .clearGroupBy()
    .where("folder_counts.folder", "=", folder)
    .select((eb) => eb.fn.sum<string>(`folder_counts.${counter}`).as("n"))})`.as("list_total");

/**
 * Each row of a page (taken first, as a subquery cut at the page) beside its inbox's name and
 * the list's total: one statement. Its index lookups follow the page's rows, which keep their order.
 */
function withNames<O>(db: Kysely<MailboxDb>, page: AliasedSelectQueryBuilder<O & PageRowKeys, "m">, total: ReturnType<typeof listTotal>) {
  return (
    db
      .selectFrom(page)
      // Lateral, so the page's rows lead and keep their order: as a plain join the planner hashed every inbox and sorted the page again.
      .innerJoinLateral(
        (eb) =>
          eb
            .selectFrom("inboxes")
            .select(["inboxes.username", "inboxes.domain"])
            .whereRef("inboxes.workspace_id", "=", "m.workspace_id")
            .whereRef("inboxes.inbox_id", "=", "m.inbox_id")
            .limit(1) // one row (the key), and a fence: without it the planner flattens the lateral join back
            .as("i"),
        (j) => j.onTrue(),
      )
      .selectAll("m")
      .select(["i.username as inbox_username", "i.domain as inbox_domain", total])
      .orderBy("m.sort_at", "desc")
      .orderBy("m.message_id", "desc")
  );
}
interface PageRowKeys {
  workspace_id: string;
  inbox_id: string;
  message_id: string;
  sort_at: Date;
}

/** A page of one folder's messages in scope, newest first, with their inboxes' names and the folder's total. */
export function flatViewQuery(db: Kysely<MailboxDb>, s: ViewScope, folder: Folder, p: PageAt) {
  let q = inFolder(db.selectFrom("messages").where(inViewScope("messages", s)).where(inLiveInbox("messages", s)), folder);
  if (p.after) q = q.where(pastKeys("messages.created_at", "messages.message_id", p.after, "desc"));
  const page = q
    .select([...COLUMNS, "messages.workspace_id", "messages.created_at as sort_at"])
    .select(keyInstant("messages.created_at").as("key_at"))
    .orderBy("messages.created_at", "desc")
    .orderBy("messages.message_id", "desc")
    .limit(p.limit + 1)
    .offset(p.offset)
    .as("m");
  return withNames(db, page, listTotal(db, s, folder, "total"));
}

/**
 * A page of one folder's threads in scope, the thread with the newest message first, with their
 * inboxes' names and the folder's count of threads. The page of thread rows is taken first, on
 * its own (an index range in order, cut at the page), and only then joined to its newest
 * messages: joined in one query, the planner misjudged the join's rows on small tables (19
 * expected, 1,906 found) and read every thread row in scope, hashed the messages and sorted
 * (10 ms at 10,000 messages, against 0.3).
 */
export function threadViewQuery(db: Kysely<MailboxDb>, s: ViewScope, folder: Folder, p: PageAt) {
  let page = db.selectFrom("thread_folders as tf").where(inViewScope("tf", s)).where("tf.folder", "=", folder).where(inLiveInbox("tf", s));
  if (p.after) page = page.where(pastKeys("tf.last_message_at", "tf.last_message_id", p.after, "desc"));
  const rows = page
    .select(["tf.workspace_id", "tf.last_message_id", "tf.last_message_at", "tf.message_count", "tf.unread_count", "tf.participants", "tf.labels"])
    .orderBy("tf.last_message_at", "desc")
    .orderBy("tf.last_message_id", "desc")
    .limit(p.limit + 1)
    .offset(p.offset)
    .as("tf");
  const threads = db
    .selectFrom(rows)
    .innerJoin("messages", (j) => j.onRef("messages.workspace_id", "=", "tf.workspace_id").onRef("messages.message_id", "=", "tf.last_message_id"))
    .select([...COLUMNS, "messages.workspace_id", "tf.last_message_at as sort_at", "tf.message_count", "tf.unread_count", "tf.participants", "tf.labels"])
    .select(keyInstant("tf.last_message_at").as("key_at"))
    .orderBy("tf.last_message_at", "desc")
    .orderBy("tf.last_message_id", "desc")
    .as("m");
  return withNames(db, threads, listTotal(db, s, folder, "threads"));
}

/** Per folder, the sums of the counters of the live inboxes in scope: as many rows read as inboxes, whatever the mail. */
export function countsQuery(db: Kysely<MailboxDb>, s: ViewScope) {
  return db
    .selectFrom("folder_counts")
    .innerJoin("inboxes", (j) => j.onRef("inboxes.workspace_id", "=", "folder_counts.workspace_id").onRef("inboxes.inbox_id", "=", "folder_counts.inbox_id"))
    .where(inViewScope("inboxes", s))
    .where("inboxes.deleted_at", "is", null)
    .groupBy("folder_counts.folder")
    .select((eb) => [
      "folder_counts.folder",
      eb.fn.sum<string>("folder_counts.total").as("total"),
      eb.fn.sum<string>("folder_counts.unread").as("unread"),
      eb.fn.sum<string>("folder_counts.threads").as("threads"),
    ]);
}

type Counts = Map<string, { total: number; unread: number; threads: number }>;
async function countsOf(db: Kysely<MailboxDb>, s: ViewScope | null): Promise<Counts> {
  const rows = s ? await countsQuery(db, s).execute() : [];
  return new Map(rows.map((r) => [r.folder, { total: Number(r.total), unread: Number(r.unread), threads: Number(r.threads) }]));
}
const zero = { total: 0, unread: 0, threads: 0 };

/** A row of threadViewQuery: its thread's counts, participants and labels in the folder. */
function threadFields(row: object) {
  const r = row as { message_count: number; unread_count: number; participants: string[]; labels: string[] };
  return { threadCount: Number(r.message_count), threadUnreadCount: Number(r.unread_count), participants: r.participants, labels: r.labels };
}

/** `GET /v1/messages`: one folder across every inbox in scope, newest first, optionally one row per thread. */
export async function mailboxView(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const q = parseOrThrow(MailboxViewQuery, raw, "query");
  // The cursor names the list it belongs to: another folder's, grouping's or inbox's is refused.
  const list = `messages:${q.folder}:${q.group ?? "flat"}:${q.inboxId ?? "*"}`;
  const page = { limit: q.limit, offset: q.offset, after: cursorKeys(list, q) };
  const s = await viewScope(ctx.db, claims, q.inboxId);
  const query = q.group === "thread" ? threadViewQuery : flatViewQuery;
  const rows = s ? await query(ctx.db, s, q.folder, page).execute() : [];
  const { rows: served, nextCursor } = pageOf(list, rows, q.limit, (r) => r.message_id);
  // An empty page (an empty folder, or an offset past its end) carries no total: read the counters alone.
  const counters = rows[0] ? undefined : ((await countsOf(ctx.db, s)).get(q.folder) ?? zero);
  const total = counters ? (q.group === "thread" ? counters.threads : counters.total) : Number(rows[0]!.list_total ?? 0);
  return {
    messages: served.map((r) => ({
      id: r.message_id,
      inboxId: r.inbox_id,
      inboxUsername: r.inbox_username,
      inboxDomain: r.inbox_domain,
      direction: r.direction,
      from: r.from_name ? `${r.from_name} <${r.from_address}>` : r.from_address,
      to: r.to_addresses.join(", "),
      subject: r.subject,
      snippet: r.preview,
      isRead: r.is_read,
      isStarred: r.is_starred,
      isArchived: r.is_archived,
      receivedAt: new Date(r.created_at).toISOString(),
      threadId: r.thread_id,
      ...(q.group === "thread" ? threadFields(r) : {}),
    })),
    pagination: paginationOf(q, total, nextCursor),
  };
}

/** `GET /v1/messages/folders/counts`: from the counters the projection keeps, never a count of messages. */
export async function folderCounts(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const { inboxId } = parseOrThrow(FolderCountsQuery, raw, "query");
  const counts = await countsOf(ctx.db, await viewScope(ctx.db, claims, inboxId));
  const of = (folder: Folder) => counts.get(folder) ?? zero;
  return {
    inbox: { unread: of("inbox").unread, total: of("inbox").total },
    sent: { total: of("sent").total },
    starred: { total: of("starred").total },
    archived: { total: of("archived").total },
    trash: { total: of("trash").total },
  };
}
