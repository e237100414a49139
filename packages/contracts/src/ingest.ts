import { z } from "zod";

/**
 * Accepted inbound mail travels from smtp-ingress to the mailbox on its own stream: the raw
 * bytes as the NATS payload (or, when too large for one message, in the object store under
 * `rawObject`), and this description in a header.
 */
export const IngestMeta = z.object({
  v: z.literal(1),
  /** Stable across a client's resend of the same message: the JetStream dedupe id too. */
  dedupeKey: z.string().min(1).max(300),
  queueId: z.string(),
  receivedAt: z.iso.datetime(),
  remoteAddress: z.string(),
  helo: z.string(),
  mailFrom: z.string().nullable(),
  recipients: z.array(z.object({ address: z.string(), tenantId: z.uuid(), workspaceId: z.uuid(), inboxId: z.uuid() })).min(1),
  size: z.number().int().nonnegative(),
  rawObject: z.string().nullable(),
});
export type IngestMeta = z.infer<typeof IngestMeta>;

export const INGEST_META_HEADER = "Mam-Ingest";
export const ingestSubject = (prefix: string) => `${prefix}ingest.mail`;
export function ingestStreamName(prefix: string): string {
  const tag = prefix.replace(/[^A-Za-z0-9]/g, "").toUpperCase();
  return tag ? `${tag}_INGEST` : "INGEST";
}
export const ingestBucketName = (prefix: string) => `${prefix.replace(/[^A-Za-z0-9]/g, "") || "mam"}-ingest-raw`;
