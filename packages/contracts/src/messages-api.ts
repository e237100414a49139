import { z } from "zod";
import { EmailAddress } from "./mailbox-api.ts";

const noCrLf = (s: string) => !/[\r\n]/.test(s);

/** One address or several, as the reference accepts; each must be a plain address. */
export const Recipients = z
  .union([EmailAddress, z.array(EmailAddress).max(50)])
  .transform((v) => (Array.isArray(v) ? v : [v]));

/** PostgreSQL text and JSON cannot hold NUL or a lone surrogate: refused at the door, not when stored. */
const noNul = (s: string) => !s.includes("\u0000") && s.isWellFormed();

export const Subject = z.string().max(998).refine(noCrLf, "must not contain CR or LF").refine(noNul, "must not contain NUL characters or unpaired surrogates");
export const Body = z.string().max(2_000_000).refine(noNul, "must not contain NUL characters or unpaired surrogates");

/** Attachments travel base64-encoded in JSON. */
export const AttachmentIn = z.object({
  filename: z.string().min(1).max(255).refine((s) => noCrLf(s) && !/[\u0000-\u001f"\\/]/.test(s), "must be a plain file name"),
  contentType: z
    .string()
    .max(255)
    .regex(/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i, "must be a MIME type like application/pdf")
    .default("application/octet-stream"),
  content: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, "must be base64"),
});

export const SendBody = z.object({
  to: Recipients,
  cc: Recipients.optional(),
  bcc: Recipients.optional(),
  subject: Subject,
  plainBody: Body.optional(),
  htmlBody: Body.optional(),
  replyTo: EmailAddress.optional(),
  verified: z.boolean().default(false),
  attachments: z.array(AttachmentIn).max(20).optional(),
});
export const ReplyBody = z.object({
  plainBody: Body.optional(),
  htmlBody: Body.optional(),
  cc: Recipients.optional(),
  bcc: Recipients.optional(),
  attachments: z.array(AttachmentIn).max(20).optional(),
});
export const ForwardBody = z.object({
  to: Recipients,
  cc: Recipients.optional(),
  bcc: Recipients.optional(),
  subject: Subject.optional(),
  plainBody: Body.optional(),
  htmlBody: Body.optional(),
  verified: z.boolean().default(false),
});

export const SendCommand = z.object({
  inboxId: z.string(),
  messageId: z.string().optional(),
  body: z.unknown(),
  idempotencyKey: z.string().max(255).optional(),
});

export const ListMessagesQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
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
  .refine((b) => b.isRead !== undefined || b.isStarred !== undefined || b.isArchived !== undefined, "give isRead, isStarred or isArchived");

/** Most bytes of attachments in one message, decoded. */
export const MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024;

const DraftRecipients = z.union([EmailAddress, z.array(EmailAddress).max(50)]).transform((v) => (Array.isArray(v) ? v : [v]));
const DraftBody = z.string().max(256 * 1024).refine(noNul, "must not contain NUL characters or unpaired surrogates");

/** Every field optional; to/cc/bcc take a string or a list. `verified` waives the first-contact check on send. */
export const DraftInput = z.object({
  to: DraftRecipients.optional(),
  cc: DraftRecipients.optional(),
  bcc: DraftRecipients.optional(),
  subject: Subject.optional(),
  plainBody: DraftBody.nullable().optional(),
  htmlBody: DraftBody.nullable().optional(),
  replyToMessageId: z.uuid().nullable().optional(),
  verified: z.boolean().optional(),
});
export const DraftRef = z.object({ inboxId: z.string(), draftId: z.string().optional(), body: z.unknown().optional() });
export const ListDraftsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});

/** The tenant-wide mailbox view (`GET /v1/messages`) and its folder counts. */
export const MailboxViewQuery = z.object({
  folder: z.enum(["inbox", "sent", "starred", "archived", "trash"]).default("inbox"),
  group: z.enum(["thread"]).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
  inboxId: z.uuid().optional(),
});
export const FolderCountsQuery = z.object({ inboxId: z.uuid().optional() });
