import { sql, type SelectQueryBuilder } from "kysely";
import { AppError, parseOrThrow } from "@mam/contracts/errors.ts";
import { FolderCountsQuery, MailboxViewQuery } from "@mam/contracts/messages-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";

type Folder = "inbox" | "sent" | "starred" | "archived" | "trash";
type Q = SelectQueryBuilder<MailboxDb, "messages" | "inboxes", object>;

/** Messages the caller may see, in live inboxes only; an ak_ key sees its own inbox. */
function scoped(ctx: MailboxContext, claims: ScopeClaims, inboxId: string | undefined): Q {
  if (claims.kind === "super_admin" || !claims.tenantId) throw new AppError("FORBIDDEN", "The operator key manages tenants only");
  let q = ctx.db
    .selectFrom("messages")
    .innerJoin("inboxes", (j) => j.onRef("inboxes.workspace_id", "=", "messages.workspace_id").onRef("inboxes.inbox_id", "=", "messages.inbox_id"))
    .where("messages.tenant_id", "=", claims.tenantId)
    .where("inboxes.deleted_at", "is", null);
  if (claims.workspaces !== "*")
    q = q.where("messages.workspace_id", "in", claims.workspaces.length ? claims.workspaces : ["00000000-0000-0000-0000-000000000000"]);
  if (claims.inboxId) q = q.where("messages.inbox_id", "=", claims.inboxId);
  if (inboxId) q = q.where("messages.inbox_id", "=", inboxId);
  return q;
}

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

/** `GET /v1/messages`: one folder across every inbox in scope, newest first, optionally one row per thread. */
export async function mailboxView(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const q = parseOrThrow(MailboxViewQuery, raw, "query");
  const base = inFolder(scoped(ctx, claims, q.inboxId), q.folder);
  const columns = [
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
    "inboxes.username",
    "inboxes.domain",
  ] as const;
  // One row per thread (its newest message) with the thread's counts, paged in SQL.
  const ranked = base
    .select(columns)
    .select([
      sql<number>`count(*) over (partition by messages.workspace_id, messages.thread_id)`.as("thread_count"),
      sql<number>`count(*) filter (where not messages.is_read) over (partition by messages.workspace_id, messages.thread_id)`.as("thread_unread"),
      sql<number>`row_number() over (partition by messages.workspace_id, messages.thread_id order by messages.created_at desc, messages.message_id desc)`.as(
        "rank_in_thread",
      ),
    ])
    .as("ranked");
  const grouped = ctx.db.selectFrom(ranked).where((eb) => (q.group === "thread" ? eb("rank_in_thread", "=", 1) : eb.lit(true)));
  const [page, total] = await Promise.all([
    grouped.selectAll().orderBy("created_at", "desc").orderBy("message_id", "desc").limit(q.limit).offset(q.offset).execute(),
    grouped.select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow(),
  ]);
  return {
    messages: page.map((r) => ({
      id: r.message_id,
      inboxId: r.inbox_id,
      inboxUsername: r.username,
      inboxDomain: r.domain,
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
      ...(q.group === "thread" ? { threadCount: Number(r.thread_count), threadUnreadCount: Number(r.thread_unread) } : {}),
    })),
    pagination: { total: Number(total.n), limit: q.limit, offset: q.offset },
  };
}

/** `GET /v1/messages/folders/counts`. */
export async function folderCounts(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const { inboxId } = parseOrThrow(FolderCountsQuery, raw, "query");
  const count = async (folder: Folder, unread = false) => {
    let q = inFolder(scoped(ctx, claims, inboxId), folder);
    if (unread) q = q.where("messages.is_read", "=", false);
    const r = await q.select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    return Number(r.n);
  };
  const [inboxTotal, inboxUnread, sent, starred, archived, trash] = await Promise.all([
    count("inbox"),
    count("inbox", true),
    count("sent"),
    count("starred"),
    count("archived"),
    count("trash"),
  ]);
  return {
    inbox: { unread: inboxUnread, total: inboxTotal },
    sent: { total: sent },
    starred: { total: starred },
    archived: { total: archived },
    trash: { total: trash },
  };
}
