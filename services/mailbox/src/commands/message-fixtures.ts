import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { MessageFacts } from "@mam/contracts/message-events.ts";
import type { Fields } from "./draft-decision.ts";
import type { Owner } from "./drafted.ts";

/** Events and ids for the decisions' given/when/then tests. */
export const ids = {
  tenant: "0190aaaa-0000-7000-8000-000000000001",
  workspace: "0190aaaa-0000-7000-8000-000000000002",
  inbox: "0190aaaa-0000-7000-8000-0000000000a1",
  otherInbox: "0190aaaa-0000-7000-8000-0000000000a2",
  draft: "0190aaaa-0000-7000-8000-0000000000d1",
  sent: "0190aaaa-0000-7000-8000-0000000000e1",
  newMessage: "0190aaaa-0000-7000-8000-0000000000e2",
  newThread: "0190aaaa-0000-7000-8000-0000000000f1",
  thread: "0190aaaa-0000-7000-8000-0000000000f2",
  event: "0190aaaa-0000-7000-8000-0000000000c1",
};

export const owner: Owner = { tenantId: ids.tenant, workspaceId: ids.workspace };

export function facts(over: Partial<MessageFacts> = {}): MessageFacts {
  return {
    messageId: ids.sent,
    inboxId: ids.inbox,
    threadId: ids.thread,
    from: { address: "me@example.test", name: null },
    to: ["bob@example.test"],
    cc: [],
    bcc: [],
    replyTo: null,
    subject: "Hello",
    messageIdHeader: `<${over.messageId ?? ids.sent}@example.test>`,
    inReplyTo: null,
    references: [],
    rawHash: "raw",
    rawSize: 100,
    plainHash: "plain",
    htmlHash: null,
    preview: "Hello",
    attachments: [],
    ...over,
  };
}

export const sent = (over: Partial<MessageFacts> = {}): MailboxEvent => ({ type: "MessageSent", schemaVersion: 1, data: facts(over) });

/** Mail that came in to an inbox (by default: bob wrote to ours). */
export const received = (over: Partial<MessageFacts> = {}): MailboxEvent => ({
  type: "MessageReceived",
  schemaVersion: 1,
  data: { ...facts({ from: { address: "bob@example.test", name: "Bob" }, to: ["me@example.test"], ...over }), sourceMessageId: null, authentication: null },
});

export const flagged = (messageId: string, flags: { isRead?: boolean; isStarred?: boolean; isArchived?: boolean }): MailboxEvent => ({
  type: "MessageFlagged",
  schemaVersion: 1,
  data: { messageId, ...flags },
});
export const deleted = (messageId: string): MailboxEvent => ({ type: "MessageDeleted", schemaVersion: 1, data: { messageId } });
export const delivered = (messageId: string, recipients: string[]): MailboxEvent => ({
  type: "MessageDelivered",
  schemaVersion: 1,
  data: { messageId, recipients, via: "mx" },
});
export const bounced = (messageId: string, recipients: string[], reason = "550 5.1.1 no such user"): MailboxEvent => ({
  type: "MessageBounced",
  schemaVersion: 1,
  data: { messageId, recipients, reason },
});

export const EMPTY_FIELDS: Fields = { to: [], cc: [], bcc: [], subject: "", plainBody: null, htmlBody: null, replyToMessageId: null, verified: false };

export const draftSaved = (fields: Partial<Fields>, created = true, inboxId = ids.inbox): MailboxEvent => ({
  type: "DraftSaved",
  schemaVersion: 1,
  data: { draftId: ids.draft, inboxId, created, fields: { ...EMPTY_FIELDS, ...fields } },
});
export const draftDeleted = (sentMessageId: string | null = null): MailboxEvent => ({
  type: "DraftDeleted",
  schemaVersion: 1,
  data: { draftId: ids.draft, sentMessageId },
});
