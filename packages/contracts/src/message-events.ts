import { z } from "zod";

export const AttachmentRef = z.object({
  id: z.uuid(),
  filename: z.string(),
  contentType: z.string(),
  sizeBytes: z.number().int().nonnegative(),
  /** SHA-256 of the bytes in the mailbox's content-addressed store. */
  hash: z.string(),
});
export type AttachmentRef = z.infer<typeof AttachmentRef>;

const Address = z.object({ address: z.string(), name: z.string().nullable() });

/** Facts of one message in one inbox; bodies and raw bytes are referenced by hash, never carried. */
export const MessageFacts = z.object({
  messageId: z.uuid(),
  inboxId: z.uuid(),
  threadId: z.uuid(),
  from: Address,
  to: z.array(z.string()),
  cc: z.array(z.string()),
  bcc: z.array(z.string()),
  replyTo: z.string().nullable(),
  subject: z.string(),
  messageIdHeader: z.string(),
  inReplyTo: z.string().nullable(),
  references: z.array(z.string()),
  rawHash: z.string(),
  rawSize: z.number().int().nonnegative(),
  plainHash: z.string().nullable(),
  htmlHash: z.string().nullable(),
  preview: z.string(),
  attachments: z.array(AttachmentRef),
});
export type MessageFacts = z.infer<typeof MessageFacts>;

export const Verdict = z.enum(["pass", "fail", "softfail", "neutral", "none", "policy", "temperror", "permerror"]);
export const Authentication = z.object({ spf: Verdict, dkim: Verdict, dmarc: Verdict });
export type Authentication = z.infer<typeof Authentication>;

export const MessageSentV1 = MessageFacts;
export const MessageReceivedV1 = MessageFacts.extend({
  /** For a message delivered locally: the sender's copy it came from. */
  sourceMessageId: z.uuid().nullable(),
  /** SPF, DKIM and DMARC verdicts of mail that came in over SMTP. */
  authentication: Authentication.nullable().optional(),
});
export const MessageFlaggedV1 = z.object({
  messageId: z.uuid(),
  isRead: z.boolean().optional(),
  isStarred: z.boolean().optional(),
  isArchived: z.boolean().optional(),
});
export const MessageDeletedV1 = z.object({ messageId: z.uuid() });
export const MessageDeliveredV1 = z.object({ messageId: z.uuid(), recipients: z.array(z.string()), via: z.enum(["local", "relay", "mx"]) });
export const MessageBouncedV1 = z.object({ messageId: z.uuid(), recipients: z.array(z.string()), reason: z.string() });

export const DraftFields = z.object({
  to: z.array(z.string()),
  cc: z.array(z.string()),
  bcc: z.array(z.string()),
  subject: z.string(),
  plainBody: z.string().nullable(),
  htmlBody: z.string().nullable(),
  replyToMessageId: z.uuid().nullable(),
  verified: z.boolean(),
});
export const DraftSavedV1 = z.object({ draftId: z.uuid(), inboxId: z.uuid(), created: z.boolean(), fields: DraftFields });
export const DraftDeletedV1 = z.object({ draftId: z.uuid(), sentMessageId: z.uuid().nullable() });
