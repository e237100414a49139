import { z } from "zod";
import { EmailAddress } from "./mailbox-api.ts";
import { Authentication, DraftFields } from "./message-events.ts";
import { pageFields } from "./pagination.ts";
import { Pagination } from "./results.ts";

const noCrLf = (s: string) => !/[\r\n]/.test(s);

/** `Name <address>`, as messages show their senders: the address between the angle brackets. */
const angleAddress = (s: string) => /^[^<>\r\n]*<([^<>\r\n]*)>\s*$/.exec(s)?.[1] ?? s;
/** A plain address, or one written with a display name (only the address is kept). */
export const RecipientAddress = z.string().max(600).transform(angleAddress).pipe(EmailAddress);

/** One address or several, as the reference accepts. */
export const Recipients = z.union([RecipientAddress, z.array(RecipientAddress).max(50)]).transform((v) => (Array.isArray(v) ? v : [v]));

/** PostgreSQL text and JSON cannot hold NUL or a lone surrogate: refused at the door, not when stored. */
const noNul = (s: string) => !s.includes("\u0000") && s.isWellFormed();

export const Subject = z.string().max(998).refine(noCrLf, "must not contain CR or LF").refine(noNul, "must not contain NUL characters or unpaired surrogates");
export const Body = z.string().max(2_000_000).refine(noNul, "must not contain NUL characters or unpaired surrogates");

/** A container type (multipart/*, message/*): not a file, so never an attachment's type. */
export const isContainerType = (t: string) => /^(multipart|message)\//i.test(t);

/** Attachments travel base64-encoded in JSON. */
export const AttachmentIn = z.object({
  filename: z
    .string()
    .min(1)
    .max(255)
    .refine((s) => noCrLf(s) && !/[\u0000-\u001f"\\/]/.test(s), "must be a plain file name"),
  contentType: z
    .string()
    .max(255)
    .regex(/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i, "must be a MIME type like application/pdf")
    // A container, not a file: composed as one it would lose the content or carry it unencoded.
    .refine((t) => !isContainerType(t), "multipart/* and message/* are not attachment types: send the file as application/octet-stream")
    .default("application/octet-stream"),
  content: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, "must be base64"),
});

export const SendBody = z
  .object({
    to: Recipients,
    cc: Recipients.optional(),
    bcc: Recipients.optional(),
    subject: Subject,
    plainBody: Body.optional(),
    htmlBody: Body.optional(),
    replyTo: EmailAddress.optional(),
    verified: z.boolean().default(false),
    attachments: z.array(AttachmentIn).max(20).optional(),
  })
  .meta({ id: "SendBody" });
export const ReplyBody = z
  .object({
    plainBody: Body.optional(),
    htmlBody: Body.optional(),
    cc: Recipients.optional(),
    bcc: Recipients.optional(),
    attachments: z.array(AttachmentIn).max(20).optional(),
    /** Vouches for a Cc or Bcc address the conversation does not have (the first-contact safeguard). */
    verified: z.boolean().default(false),
  })
  .meta({ id: "ReplyBody" });
export const ForwardBody = z
  .object({
    to: Recipients,
    cc: Recipients.optional(),
    bcc: Recipients.optional(),
    subject: Subject.optional(),
    plainBody: Body.optional(),
    htmlBody: Body.optional(),
    verified: z.boolean().default(false),
  })
  .meta({ id: "ForwardBody" });

export const SendCommand = z.object({
  inboxId: z.string(),
  messageId: z.string().optional(),
  body: z.unknown(),
  idempotencyKey: z.string().max(255).optional(),
});

export const ListMessagesQuery = z.object({
  ...pageFields(),
  direction: z.enum(["inbound", "outbound"]).optional(),
});
export const MessageRef = z.object({
  inboxId: z.string(),
  messageId: z.string(),
  attachmentId: z.string().optional(),
  /** For bytes (raw, attachment): where the slice asked for starts. */
  offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
});
export const ThreadRef = z.object({ inboxId: z.string(), threadId: z.string() });
export const FlagsBody = z
  .object({ isRead: z.boolean().optional(), isStarred: z.boolean().optional(), isArchived: z.boolean().optional() })
  .refine((b) => b.isRead !== undefined || b.isStarred !== undefined || b.isArchived !== undefined, "give isRead, isStarred or isArchived")
  .meta({ id: "FlagsBody" });

/** Most bytes of attachments in one message, decoded. */
export const MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024;

const DraftRecipients = z.union([RecipientAddress, z.array(RecipientAddress).max(50)]).transform((v) => (Array.isArray(v) ? v : [v]));
const DraftBody = z
  .string()
  .max(256 * 1024)
  .refine(noNul, "must not contain NUL characters or unpaired surrogates");

/** Every field optional; to/cc/bcc take a string or a list. `verified` waives the first-contact check on send. */
export const DraftInput = z
  .object({
    to: DraftRecipients.optional(),
    cc: DraftRecipients.optional(),
    bcc: DraftRecipients.optional(),
    subject: Subject.optional(),
    plainBody: DraftBody.nullable().optional(),
    htmlBody: DraftBody.nullable().optional(),
    replyToMessageId: z.uuid().nullable().optional(),
    verified: z.boolean().optional(),
  })
  .meta({ id: "DraftInput" });
export const DraftRef = z.object({ inboxId: z.string(), draftId: z.string().optional(), body: z.unknown().optional() });
export const ListDraftsQuery = z.object(pageFields());

/** The tenant-wide mailbox view (`GET /v1/messages`) and its folder counts. */
export const MailboxViewQuery = z.object({
  folder: z.enum(["inbox", "sent", "starred", "archived", "trash"]).default("inbox"),
  group: z.enum(["thread"]).optional(),
  ...pageFields(),
  inboxId: z.uuid().optional(),
});
export const FolderCountsQuery = z.object({ inboxId: z.uuid().optional() });

export const AttachmentSummary = z.object({ id: z.uuid(), filename: z.string(), contentType: z.string(), sizeBytes: z.number().int() });
export const AttachmentList = z.object({ attachments: z.array(AttachmentSummary) });

/** What became of one recipient of an outgoing message so far. */
export const RecipientDelivery = z
  .object({
    recipient: z.string(),
    /** pending: not tried yet; deferred: refused for now or not reached, tried again later. */
    status: z.enum(["pending", "delivered", "bounced", "deferred"]),
    /** Why it bounced, or what its last try met (deferred); null otherwise. */
    reason: z.string().nullable(),
    /** When it was delivered or bounced; null while it waits. */
    at: z.string().nullable(),
  })
  .meta({ id: "RecipientDelivery" });

/** The public Message: the reference's fields and the ones its sample client reads. */
export const Message = z
  .object({
    id: z.uuid(),
    inboxId: z.uuid(),
    threadId: z.uuid(),
    direction: z.enum(["inbound", "outbound"]),
    /** Outgoing: sent (not tried yet), deferred (some recipient waits for another try), delivered, bounced. */
    status: z.enum(["sent", "deferred", "delivered", "bounced", "received"]),
    /** `"Name" <address>`, or the address alone. */
    from: z.string(),
    fromAddress: z.string(),
    fromName: z.string().nullable(),
    /** The To addresses, comma-separated, as the reference has it; `toAddresses` as a list. */
    to: z.string(),
    toAddresses: z.array(z.string()),
    cc: z.array(z.string()),
    /** Only on outbound messages; empty on inbound ones. */
    bcc: z.array(z.string()),
    replyTo: z.string().nullable(),
    subject: z.string(),
    preview: z.string(),
    plainBody: z.string().nullable(),
    htmlBody: z.string().nullable(),
    isRead: z.boolean(),
    isStarred: z.boolean(),
    isArchived: z.boolean(),
    labels: z.array(z.string()),
    messageIdHeader: z.string(),
    inReplyTo: z.string().nullable(),
    references: z.array(z.string()),
    attachments: z.array(AttachmentSummary),
    /** Each recipient of an outgoing message with what became of it; empty on inbound ones. */
    deliveries: z.array(RecipientDelivery),
    sizeBytes: z.number().int(),
    /** SPF, DKIM and DMARC verdicts of mail that came in over SMTP; null otherwise. */
    authentication: Authentication.nullable(),
    receivedAt: z.string(),
    sentAt: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: "Message" });
export type Message = z.infer<typeof Message>;
export const MessagePage = z.object({ messages: z.array(Message), pagination: Pagination });

export const SendResult = z.object({ id: z.uuid(), threadId: z.uuid(), status: z.literal("sent"), messageId: z.string() }).meta({ id: "SendResult" });
export type SendResult = z.infer<typeof SendResult>;
export const DraftSent = SendResult.extend({ draftId: z.uuid() });

/** Both forms the reference mentions: `threadId`/`messageCount` and the sample client's `thread`. */
export const Thread = z.object({
  threadId: z.uuid(),
  messageCount: z.number().int(),
  thread: z.object({ id: z.uuid(), subject: z.string(), messageCount: z.number().int() }),
  messages: z.array(Message),
});

export const Draft = DraftFields.extend({ id: z.uuid(), inboxId: z.uuid(), createdAt: z.string(), updatedAt: z.string() }).meta({ id: "Draft" });
export const DraftPage = z.object({ drafts: z.array(Draft), pagination: Pagination });

/** One row of the tenant-wide mailbox view; the thread counts, participants and labels only with `group=thread`. */
export const MailboxItem = z
  .object({
    id: z.uuid(),
    inboxId: z.uuid(),
    inboxUsername: z.string(),
    inboxDomain: z.string(),
    direction: z.enum(["inbound", "outbound"]),
    from: z.string(),
    to: z.string(),
    subject: z.string(),
    snippet: z.string(),
    isRead: z.boolean(),
    isStarred: z.boolean(),
    isArchived: z.boolean(),
    receivedAt: z.string(),
    threadId: z.uuid(),
    threadCount: z.number().int().optional(),
    threadUnreadCount: z.number().int().optional(),
    /** The thread's senders and To/Cc recipients in this folder, lower-cased, distinct, sorted; the first 50 only. */
    participants: z.array(z.string()).optional(),
    /** The labels of the thread's messages in this folder, distinct, sorted. */
    labels: z.array(z.string()).optional(),
  })
  .meta({ id: "MailboxItem" });
export const MailboxPage = z.object({ messages: z.array(MailboxItem), pagination: Pagination });
const Total = z.object({ total: z.number().int() });
export const FolderCounts = z.object({
  inbox: z.object({ unread: z.number().int(), total: z.number().int() }),
  sent: Total,
  starred: Total,
  archived: Total,
  trash: Total,
});
