import { type Kysely, sql } from "kysely";
import { AppError, notFound, parseOrThrow } from "@mam/contracts/errors.ts";
import { IdParam } from "@mam/contracts/identity-api.ts";
import { ListMessagesQuery, MessageRef, ThreadRef } from "@mam/contracts/messages-api.ts";
import { BINARY_CHUNK_BYTES, type BinaryBody } from "@mam/contracts/rpc.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { cursorKeys, keyInstant, pageOf, paginationOf, pastKeys } from "@mam/service-kit/keyset.ts";
import { z } from "zod";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import { getBlobSlice } from "../store/blobs.ts";
import { confirmLive, type InboxPlacement, inboxIsLive, visibleInbox, visiblePlacement } from "./inboxes.ts";
import type { PageAt } from "./mailbox-view.ts";
import { detailedView, messageOfInbox, withDetails } from "./messages.ts";

/** The inbox's live messages (of one direction): counters the projection keeps (`sent` is live outbound mail). */
function inboxTotalQuery(db: Kysely<MailboxDb>, inbox: InboxPlacement, direction: "inbound" | "outbound" | undefined) {
  const folders = direction === "inbound" ? ["inbound" as const] : direction === "outbound" ? ["sent" as const] : ["inbound" as const, "sent" as const];
  return db
    .selectFrom("folder_counts")
    .where("workspace_id", "=", inbox.workspace_id)
    .where("inbox_id", "=", inbox.inbox_id)
    .where("folder", "in", folders)
    .select((eb) => eb.fn.sum<string>("total").as("n"));
}

/**
 * A page of an inbox's live messages, newest first, each with its bodies and delivery records,
 * and the list's total (an InitPlan beside the page): one statement, with none when the inbox
 * is no longer live. `direction` narrows to inbound or outbound.
 */
export function inboxMessagesQuery(db: Kysely<MailboxDb>, inbox: InboxPlacement, direction: "inbound" | "outbound" | undefined, p: PageAt) {
  let q = db
    .selectFrom("messages")
    .where("workspace_id", "=", inbox.workspace_id)
    .where("inbox_id", "=", inbox.inbox_id)
    .where("deleted_at", "is", null)
    .where(inboxIsLive(db, inbox));
  if (direction) q = q.where("direction", "=", direction);
  if (p.after) q = q.where(pastKeys("created_at", "message_id", p.after, "desc"));
  const page = q
    .selectAll()
    .select([keyInstant("created_at").as("key_at"), sql<string>`row_number() over (order by created_at desc, message_id desc)`.as("rn")])
    .orderBy("created_at", "desc")
    .orderBy("message_id", "desc")
    .limit(p.limit + 1)
    .offset(p.offset)
    .as("m");
  return withDetails(db, page, "desc", p.offset + p.limit).select(sql<string | null>`(${inboxTotalQuery(db, inbox, direction)})`.as("list_total"));
}

/** Newest first, with the total for paging; `direction` narrows to inbound or outbound. */
export async function listMessages(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const { inboxId, ...query } = parseOrThrow(z.object({ inboxId: z.string() }).loose(), raw);
  const q = parseOrThrow(ListMessagesQuery, query, "query");
  const list = `inbox-messages:${inboxId}:${q.direction ?? "both"}`;
  const page = { limit: q.limit, offset: q.offset, after: cursorKeys(list, q) };
  const inbox = await visiblePlacement(ctx.db, claims, inboxId);
  const rows = await inboxMessagesQuery(ctx.db, inbox, q.direction, page).execute();
  const { rows: served, nextCursor } = pageOf(list, rows, q.limit, (r) => r.message_id);
  // An empty page (no mail, an offset past the end, or an inbox deleted since) carries no
  // total: the inbox is looked up (a 404 when gone), then its counters alone.
  let total = Number(rows[0]?.list_total ?? 0);
  if (!rows[0]) {
    await confirmLive(ctx.db, claims, inbox);
    total = Number((await inboxTotalQuery(ctx.db, inbox, q.direction).executeTakeFirst())?.n ?? 0);
  }
  return { messages: served.map(detailedView), pagination: paginationOf(q, total, nextCursor) };
}

/** One slice of stored bytes, from the offset the caller asked for. */
async function binarySlice(
  ctx: MailboxContext,
  workspaceId: string,
  hash: string,
  offset: number,
  what: string,
  contentType: string,
  filename: string | null,
): Promise<BinaryBody> {
  const slice = await getBlobSlice(ctx.db, workspaceId, hash, offset, BINARY_CHUNK_BYTES);
  if (!slice) throw notFound(what);
  if (offset > slice.size) throw new AppError("VALIDATION_ERROR", `offset is past the end (${slice.size} bytes)`);
  return { $binary: { base64: slice.data.toString("base64"), contentType, filename, size: slice.size, offset } };
}

/** The exact RFC 5322 bytes, as sent or received. */
export async function rawMessage(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const ref = parseOrThrow(MessageRef, raw);
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  const m = await messageOfInbox(ctx.db, inbox, ref.messageId);
  return binarySlice(ctx, inbox.workspace_id, m.raw_hash, ref.offset ?? 0, "Raw message", "message/rfc822", `${m.message_id}.eml`);
}

export async function listAttachments(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const ref = parseOrThrow(MessageRef, raw);
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  const m = await messageOfInbox(ctx.db, inbox, ref.messageId);
  return { attachments: m.attachments.map((a) => ({ id: a.id, filename: a.filename, contentType: a.contentType, sizeBytes: a.sizeBytes })) };
}

export async function getAttachment(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const ref = parseOrThrow(MessageRef, raw);
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  const m = await messageOfInbox(ctx.db, inbox, ref.messageId);
  const id = parseOrThrow(IdParam, ref.attachmentId, "attachment id");
  const a = m.attachments.find((x) => x.id === id);
  if (!a) throw notFound("Attachment");
  return binarySlice(ctx, inbox.workspace_id, a.hash, ref.offset ?? 0, "Attachment", a.contentType, a.filename);
}

/** A thread's live messages in this inbox, oldest first, each with its bodies and delivery records: one statement, with none when the inbox is no longer live. */
export function threadQuery(db: Kysely<MailboxDb>, inbox: InboxPlacement, threadId: string) {
  const messages = db
    .selectFrom("messages")
    .selectAll()
    .where("workspace_id", "=", inbox.workspace_id)
    .where("inbox_id", "=", inbox.inbox_id)
    .where("thread_id", "=", threadId)
    .where("deleted_at", "is", null)
    .where(inboxIsLive(db, inbox))
    .as("m");
  return withDetails(db, messages, "asc");
}

/** A thread of this inbox, oldest first; both response forms the reference mentions. */
export async function getThread(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const ref = parseOrThrow(ThreadRef, raw);
  const inbox = await visiblePlacement(ctx.db, claims, ref.inboxId);
  // The inbox's 404 comes before a bad thread id's 400, as when the inbox was always read first.
  if (!IdParam.safeParse(ref.threadId).success) await confirmLive(ctx.db, claims, inbox);
  const threadId = parseOrThrow(IdParam, ref.threadId, "thread id");
  const rows = await threadQuery(ctx.db, inbox, threadId).execute();
  if (!rows[0]) {
    await confirmLive(ctx.db, claims, inbox); // a 404 of the inbox when it is gone
    throw notFound("Thread");
  }
  const messages = rows.map(detailedView);
  return { threadId, messageCount: messages.length, thread: { id: threadId, subject: rows[0]!.subject, messageCount: messages.length }, messages };
}
