import type { ErrorBody } from "@mam/contracts/errors.ts";
import type { Inbox } from "@mam/contracts/mailbox-api.ts";
import type { Draft, MailboxItem, Message, SendResult, Thread } from "@mam/contracts/messages-api.ts";
import type { PaginationOut } from "@mam/contracts/pagination.ts";
import type { z } from "zod";

/*
 * The readable text beside each tool's structured content. Many MCP clients show the model
 * only this text, so it carries every id an agent needs for its next call.
 */

type Page = z.infer<typeof PaginationOut>;
type InboxT = z.infer<typeof Inbox>;
type MessageT = z.infer<typeof Message>;
type DraftT = z.infer<typeof Draft>;
type ItemT = z.infer<typeof MailboxItem>;
type ThreadT = z.infer<typeof Thread>;
type SentT = z.infer<typeof SendResult>;

export function errorText(e: ErrorBody): string {
  const lines = [`${e.code}: ${e.error}`];
  for (const f of e.fields ?? []) lines.push(`- ${f.path}: ${f.message}`);
  if (e.limit !== undefined) lines.push(`Limit ${e.limit}: ${e.usage} of ${e.max} used`);
  return lines.join("\n");
}

export function pageText(p: Page, shown: number, what: string): string {
  const head = `${shown} ${what} shown of ${p.total} (offset ${p.offset})`;
  return p.nextCursor ? `${head}; more with cursor "${p.nextCursor}"` : head;
}

export function inboxLine(i: InboxT): string {
  const name = i.displayName ? ` "${i.displayName}"` : "";
  const aliases = i.addresses.filter((a) => a.address !== i.email).map((a) => a.address);
  return `${i.email}${name} (inbox ${i.id}, workspace ${i.workspaceId})${aliases.length ? `, also ${aliases.join(", ")}` : ""}`;
}

export function inboxesText(b: { inboxes: InboxT[]; pagination: Page }): string {
  return [pageText(b.pagination, b.inboxes.length, "inboxes"), ...b.inboxes.map((i) => `- ${inboxLine(i)}`)].join("\n");
}

function flags(m: { isRead: boolean; isStarred: boolean; isArchived: boolean }): string {
  const out = [m.isRead ? "read" : "unread"];
  if (m.isStarred) out.push("starred");
  if (m.isArchived) out.push("archived");
  return out.join(", ");
}

/** One line of a list: enough to pick the message and call get_message or get_thread. */
export function messageLine(
  m: Pick<MessageT, "id" | "threadId" | "direction" | "from" | "to" | "subject" | "receivedAt" | "isRead" | "isStarred" | "isArchived">,
) {
  return `- ${m.receivedAt} ${m.direction === "inbound" ? "from" : "to"} ${m.direction === "inbound" ? m.from : m.to}: "${m.subject}" [${flags(m)}] (message ${m.id}, thread ${m.threadId})`;
}

export function messagesText(b: { messages: MessageT[]; pagination: Page }): string {
  return [pageText(b.pagination, b.messages.length, "messages"), ...b.messages.map(messageLine)].join("\n");
}

export function messageText(m: MessageT): string {
  const lines = [`Message ${m.id} in thread ${m.threadId} of inbox ${m.inboxId} (${m.direction}, ${m.status}, ${flags(m)})`, `From: ${m.from}`, `To: ${m.to}`];
  if (m.cc.length) lines.push(`Cc: ${m.cc.join(", ")}`);
  if (m.bcc.length) lines.push(`Bcc: ${m.bcc.join(", ")}`);
  if (m.replyTo) lines.push(`Reply-To: ${m.replyTo}`);
  lines.push(`Subject: ${m.subject}`, `Date: ${m.sentAt ?? m.receivedAt}`);
  for (const a of m.attachments) lines.push(`Attachment: ${a.filename} (${a.contentType}, ${a.sizeBytes} bytes, id ${a.id})`);
  for (const d of m.deliveries) lines.push(`Delivery to ${d.recipient}: ${d.status}${d.reason ? ` (${d.reason})` : ""}`);
  lines.push("", m.plainBody ?? (m.htmlBody !== null ? `[HTML]\n${m.htmlBody}` : "[no body]"));
  return lines.join("\n");
}

export function threadText(t: ThreadT): string {
  const head = `Thread ${t.threadId}: "${t.thread.subject}", ${t.messageCount} messages, oldest first`;
  return [head, ...t.messages.map((m) => `\n--- ${messageText(m)}`)].join("\n");
}

export function threadsText(b: { messages: ItemT[]; pagination: Page }): string {
  const lines = b.messages.map((t) => {
    const counts = t.threadCount !== undefined ? `, ${t.threadCount} messages, ${t.threadUnreadCount ?? 0} unread` : "";
    return `- ${t.receivedAt} "${t.subject}" in ${t.inboxUsername}@${t.inboxDomain}, last from ${t.from}${counts} (thread ${t.threadId}, inbox ${t.inboxId}, newest message ${t.id})`;
  });
  return [pageText(b.pagination, b.messages.length, "threads"), ...lines].join("\n");
}

export function sentText(s: SentT & { draftId?: string }): string {
  const from = s.draftId ? `Draft ${s.draftId} sent` : "Sent";
  return `${from}: message ${s.id} in thread ${s.threadId} (Message-ID ${s.messageId})`;
}

export function draftText(d: DraftT): string {
  const lines = [`Draft ${d.id} of inbox ${d.inboxId} (updated ${d.updatedAt})`, `To: ${d.to.join(", ") || "(none)"}`];
  if (d.cc.length) lines.push(`Cc: ${d.cc.join(", ")}`);
  if (d.bcc.length) lines.push(`Bcc: ${d.bcc.join(", ")}`);
  lines.push(`Subject: ${d.subject}`);
  if (d.replyToMessageId) lines.push(`In reply to message ${d.replyToMessageId}`);
  if (d.verified) lines.push("Verified: first contact allowed");
  lines.push("", d.plainBody ?? (d.htmlBody !== null ? `[HTML]\n${d.htmlBody}` : "[no body]"));
  return lines.join("\n");
}

export function draftsText(b: { drafts: DraftT[]; pagination: Page }): string {
  const lines = b.drafts.map((d) => `- "${d.subject}" to ${d.to.join(", ") || "(none)"} (draft ${d.id}, updated ${d.updatedAt})`);
  return [pageText(b.pagination, b.drafts.length, "drafts"), ...lines].join("\n");
}
