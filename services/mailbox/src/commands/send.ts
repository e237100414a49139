import { parseOrThrow } from "@mam/contracts/errors.ts";
import { ForwardBody, isContainerType, ReplyBody, SendBody, SendCommand } from "@mam/contracts/messages-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { MailboxContext } from "../context.ts";
import { sendingInbox, type InboxRow } from "../read/inboxes.ts";
import { messageOfInbox, type MessageRow } from "../read/messages.ts";
import { getBlobs } from "../store/blobs.ts";
import type { CommandMeta } from "./execute.ts";
import { forwardedBodies } from "./forwarded.ts";
import { conversationOf, referencesOf } from "./replies.ts";
import { bodiesOf, decodeAttachments, sendFromInbox } from "./send-core.ts";
import type { SendResult } from "./send-decision.ts";

/**
 * A received attachment's type as a forward carries it: a container (an attached email,
 * message/rfc822; a report's message/delivery-status) goes as a file, as the API takes no
 * container type either (composed as one it would lose its content or go out unencoded).
 */
const attachableType = (t: string) => (isContainerType(t) ? "application/octet-stream" : t);

const prefixed = (prefix: string, subject: string) => (subject.toLowerCase().startsWith(prefix.toLowerCase()) ? subject : `${prefix} ${subject}`);

async function ownAddresses(ctx: MailboxContext, inbox: InboxRow): Promise<Set<string>> {
  const rows = await ctx.db
    .selectFrom("inbox_addresses")
    .select("address")
    .where("workspace_id", "=", inbox.workspace_id)
    .where("inbox_id", "=", inbox.inbox_id)
    .execute();
  return new Set([...rows.map((r) => r.address), inbox.canonical_email]);
}

/** A request's identity for its Idempotency-Key: as parsed, and as the client wrote it (see SendOptions). */
const idem = (cmd: { idempotencyKey?: string; body: unknown }, request: Record<string, unknown>, parsed: unknown) =>
  cmd.idempotencyKey ? { idempotency: { key: cmd.idempotencyKey, request: { ...request, body: parsed }, asSent: { ...request, body: cmd.body } } } : {};

/** POST /send: a new thread; recipients must have written first unless `verified`. */
export async function send(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta): Promise<SendResult> {
  const cmd = parseOrThrow(SendCommand, raw);
  const b = parseOrThrow(SendBody, cmd.body);
  const inbox = await sendingInbox(ctx.db, claims, cmd.inboxId);
  return sendFromInbox(
    ctx,
    inbox,
    {
      to: b.to,
      cc: b.cc ?? [],
      bcc: b.bcc ?? [],
      subject: b.subject,
      ...bodiesOf(b.plainBody, b.htmlBody),
      replyTo: b.replyTo,
      attachments: decodeAttachments(b.attachments),
      firstContactCheck: !b.verified,
      inReplyTo: null,
      references: [],
      threadId: null,
    },
    meta,
    idem(cmd, { kind: "send" }, b),
  );
}

function replyRecipients(original: MessageRow, all: boolean, own: Set<string>) {
  const sender = original.direction === "inbound" ? [original.reply_to ?? original.from_address] : original.to_addresses;
  let to = sender;
  let cc: string[] = [];
  if (all) {
    to = [...new Set([...sender, ...(original.direction === "inbound" ? original.to_addresses : [])])];
    cc = original.cc_addresses;
  }
  const keep = (a: string) => !own.has(a);
  const toList = to.filter(keep);
  return { to: toList.length ? toList : to, cc: cc.filter((a) => keep(a) && !toList.includes(a)) };
}

/** POST /reply/:mid and /reply-all/:mid: same thread, In-Reply-To and References set. */
export async function reply(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta, all: boolean): Promise<SendResult> {
  const cmd = parseOrThrow(SendCommand, raw);
  const b = parseOrThrow(ReplyBody, cmd.body);
  const inbox = await sendingInbox(ctx.db, claims, cmd.inboxId);
  const original = await messageOfInbox(ctx.db, inbox, cmd.messageId);
  const { to, cc } = replyRecipients(original, all, await ownAddresses(ctx, inbox));
  return sendFromInbox(
    ctx,
    inbox,
    {
      to,
      cc: [...new Set([...cc, ...(b.cc ?? [])])],
      bcc: b.bcc ?? [],
      subject: prefixed("Re:", original.subject),
      ...bodiesOf(b.plainBody, b.htmlBody),
      attachments: decodeAttachments(b.attachments),
      // The conversation's addresses have written or been written to already; any other
      // (a Cc or Bcc the reply adds) is asked about as a new message's recipients are.
      firstContactCheck: !b.verified,
      inConversation: conversationOf(original),
      inReplyTo: original.message_id_header,
      references: referencesOf(original),
      threadId: original.thread_id,
    },
    meta,
    idem(cmd, { kind: all ? "reply-all" : "reply", messageId: cmd.messageId }, b),
  );
}

/** POST /forward/:mid: a new thread carrying the original's text and attachments. */
export async function forward(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta): Promise<SendResult> {
  const cmd = parseOrThrow(SendCommand, raw);
  const b = parseOrThrow(ForwardBody, cmd.body);
  const inbox = await sendingInbox(ctx.db, claims, cmd.inboxId);
  const original = await messageOfInbox(ctx.db, inbox, cmd.messageId);
  const blobs = await getBlobs(
    ctx.db,
    inbox.workspace_id,
    [original.plain_hash, original.html_hash, ...original.attachments.map((a) => a.hash)].filter((h): h is string => !!h),
  );
  return sendFromInbox(
    ctx,
    inbox,
    {
      to: b.to,
      cc: b.cc ?? [],
      bcc: b.bcc ?? [],
      subject: b.subject ?? prefixed("Fwd:", original.subject),
      ...forwardedBodies(original, blobs, b),
      attachments: original.attachments.map((a) => ({
        filename: a.filename,
        contentType: attachableType(a.contentType),
        content: blobs.get(a.hash) ?? Buffer.alloc(0),
      })),
      firstContactCheck: !b.verified,
      inReplyTo: null,
      references: [],
      threadId: null,
    },
    meta,
    idem(cmd, { kind: "forward", messageId: cmd.messageId }, b),
  );
}
