import { AppError, notFound, parseOrThrow } from "@mam/contracts/errors.ts";
import { IdParam } from "@mam/contracts/identity-api.ts";
import { ListMessagesQuery, MessageRef, ThreadRef } from "@mam/contracts/messages-api.ts";
import { BINARY_CHUNK_BYTES, type BinaryBody } from "@mam/contracts/rpc.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { z } from "zod";
import type { MailboxContext } from "../context.ts";
import { getBlobSlice } from "../store/blobs.ts";
import { visibleInbox } from "./inboxes.ts";
import { messageOfInbox, viewsOf } from "./messages.ts";

/** Newest first, with the total for paging; `direction` narrows to inbound or outbound. */
export async function listMessages(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const { inboxId, ...query } = parseOrThrow(z.object({ inboxId: z.string() }).loose(), raw);
  const q = parseOrThrow(ListMessagesQuery, query, "query");
  const inbox = await visibleInbox(ctx.db, claims, inboxId);
  let base = ctx.db
    .selectFrom("messages")
    .where("workspace_id", "=", inbox.workspace_id)
    .where("inbox_id", "=", inbox.inbox_id)
    .where("deleted_at", "is", null);
  if (q.direction) base = base.where("direction", "=", q.direction);
  const [rows, total] = await Promise.all([
    base.selectAll().orderBy("created_at", "desc").orderBy("message_id", "desc").limit(q.limit).offset(q.offset).execute(),
    base.select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow(),
  ]);
  return { messages: await viewsOf(ctx.db, inbox.workspace_id, rows), pagination: { total: Number(total.n), limit: q.limit, offset: q.offset } };
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

/** A thread of this inbox, oldest first; both response forms the reference mentions. */
export async function getThread(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const ref = parseOrThrow(ThreadRef, raw);
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  const threadId = parseOrThrow(IdParam, ref.threadId, "thread id");
  const rows = await ctx.db
    .selectFrom("messages")
    .selectAll()
    .where("workspace_id", "=", inbox.workspace_id)
    .where("thread_id", "=", threadId)
    .where("inbox_id", "=", inbox.inbox_id)
    .where("deleted_at", "is", null)
    .orderBy("created_at")
    .orderBy("message_id")
    .execute();
  if (!rows.length) throw notFound("Thread");
  const messages = await viewsOf(ctx.db, inbox.workspace_id, rows);
  return { threadId, messageCount: messages.length, thread: { id: threadId, subject: rows[0]!.subject, messageCount: messages.length }, messages };
}
