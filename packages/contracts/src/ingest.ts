import { z } from "zod";

/** Local-part prefix of the return path (envelope sender) of every message the platform sends. */
export const BOUNCE_LOCAL_PREFIX = "bounces+";
/** The token after the prefix: base32 (RFC 4648, lower case, no padding), at most 56 characters (a local part is at most 64). */
export const BOUNCE_TOKEN = /^[a-z2-7]{16,56}$/;

/**
 * The token of a platform return path (`bounces+<token>@<mailDomain>`), or null when the
 * address is not one. Only the shape is checked here; the mailbox verifies the token.
 */
export function returnPathToken(address: string, mailDomain: string): string | null {
  const at = address.lastIndexOf("@");
  if (at < 0 || address.slice(at + 1).toLowerCase() !== mailDomain.toLowerCase()) return null;
  const local = address.slice(0, at).toLowerCase();
  if (!local.startsWith(BOUNCE_LOCAL_PREFIX)) return null;
  const token = local.slice(BOUNCE_LOCAL_PREFIX.length);
  return BOUNCE_TOKEN.test(token) ? token : null;
}

/**
 * Accepted inbound mail travels from smtp-ingress to the mailbox on its own stream: the raw
 * bytes as the NATS payload (or, when too large for one message, in the object store under
 * `rawObject`), and this description in a header.
 */
export const IngestMeta = z
  .object({
    v: z.literal(1),
    /** Stable across a client's resend of the same message: the JetStream dedupe id too. */
    dedupeKey: z.string().min(1).max(300),
    queueId: z.string(),
    receivedAt: z.iso.datetime(),
    remoteAddress: z.string(),
    helo: z.string(),
    mailFrom: z.string().nullable(),
    recipients: z.array(z.object({ address: z.string(), tenantId: z.uuid(), workspaceId: z.uuid(), inboxId: z.uuid() })),
    /**
     * Return addresses of the platform's own outgoing mail (`bounces+<token>@<MAIL_DOMAIN>`)
     * this message was sent to. smtp-ingress accepts them only from a null reverse-path
     * (`MAIL FROM:<>`); the mailbox checks the token and only then treats the message as a
     * delivery report about the mail the token names.
     */
    returnPaths: z
      .array(z.object({ address: z.string(), token: z.string().regex(BOUNCE_TOKEN) }))
      .max(50)
      .default([]),
    size: z.number().int().nonnegative(),
    rawObject: z.string().nullable(),
  })
  .refine((m) => m.recipients.length + m.returnPaths.length > 0, { message: "a message needs at least one recipient" });
export type IngestMeta = z.infer<typeof IngestMeta>;

export const INGEST_META_HEADER = "Mam-Ingest";
export const ingestSubject = (prefix: string) => `${prefix}ingest.mail`;
export function ingestStreamName(prefix: string): string {
  const tag = prefix.replace(/[^A-Za-z0-9]/g, "").toUpperCase();
  return tag ? `${tag}_INGEST` : "INGEST";
}
export const ingestBucketName = (prefix: string) => `${prefix.replace(/[^A-Za-z0-9]/g, "") || "mam"}-ingest-raw`;
