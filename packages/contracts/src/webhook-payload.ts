import { z } from "zod";
import { FeedAttachment, type FeedEvent, PublicEventId, PublicEventType } from "./realtime-feed.ts";

// Webhook deliveries: the body and the headers (camelCase and flat, as the reference has them).

export const WebhookPayload = z
  .object({
    event: PublicEventType,
    eventId: PublicEventId,
    /** When the event happened (ISO-8601). */
    timestamp: z.string(),
    tenantId: z.uuid(),
    workspaceId: z.uuid(),
    inboxId: z.uuid().nullable(),
    messageId: z.uuid().optional(),
    threadId: z.uuid().optional(),
    direction: z.enum(["inbound", "outbound"]).optional(),
    from: z.string().optional(),
    fromAddress: z.string().optional(),
    to: z.array(z.string()).optional(),
    cc: z.array(z.string()).optional(),
    subject: z.string().optional(),
    preview: z.string().optional(),
    plainBody: z.string().nullable().optional(),
    htmlBody: z.string().nullable().optional(),
    bodyTruncated: z.boolean().optional(),
    messageIdHeader: z.string().optional(),
    inReplyTo: z.string().nullable().optional(),
    attachments: z.array(FeedAttachment).optional(),
    threadSubject: z.string().optional(),
    /** message.delivered and message.bounced: the recipients concerned. */
    recipients: z.array(z.string()).optional(),
    via: z.string().optional(),
    reason: z.string().optional(),
    domainId: z.uuid().optional(),
    domain: z.string().optional(),
  })
  .meta({ id: "WebhookPayload" });
export type WebhookPayload = z.infer<typeof WebhookPayload>;

/** A feed event as a webhook delivers it. */
export function toWebhookPayload(e: FeedEvent): WebhookPayload {
  const m = e.message;
  return {
    event: e.eventType,
    eventId: e.eventId,
    timestamp: e.occurredAt,
    tenantId: e.tenantId,
    workspaceId: e.workspaceId,
    inboxId: e.inboxId,
    ...(m && {
      messageId: m.messageId,
      threadId: m.threadId,
      direction: m.direction,
      from: m.from,
      fromAddress: m.fromAddress,
      to: m.to,
      cc: m.cc,
      subject: m.subject,
      preview: m.preview,
      plainBody: m.plainBody,
      htmlBody: m.htmlBody,
      bodyTruncated: m.bodyTruncated,
      messageIdHeader: m.messageIdHeader,
      inReplyTo: m.inReplyTo,
      attachments: m.attachments,
    }),
    ...(e.thread && { threadSubject: e.thread.subject }),
    ...(e.delivery && { recipients: e.delivery.recipients, via: e.delivery.via }),
    ...(e.bounce && { recipients: e.bounce.recipients, reason: e.bounce.reason }),
    ...(e.domain && { domainId: e.domain.domainId, domain: e.domain.domain }),
  };
}

/** Headers of every webhook delivery. */
export const WebhookHeaders = {
  /** `v1=<hex HMAC-SHA256(secret, rawBody)>`. */
  signature: "x-myagentmail-signature",
  /** Unix seconds of this attempt. */
  timestamp: "x-myagentmail-timestamp",
  /** `v1=<hex HMAC-SHA256(secret, timestamp + "." + rawBody)>`. */
  signatureTs: "x-myagentmail-signature-ts",
  /** The event id: the same on every attempt of one event, for dedupe. */
  eventId: "x-myagentmail-event-id",
  /** The event type. */
  event: "x-myagentmail-event",
  /** This attempt's number, from 1. */
  attempt: "x-myagentmail-delivery-attempt",
} as const;
