import { z } from "zod";
import { NO_SCOPE_TOKEN } from "./envelope.ts";

/**
 * The public events agents subscribe to (WebSocket frames, webhooks). Realtime renders
 * each one once from a mailbox event and appends it to the feed stream; WebSocket
 * connections and webhook deliveries read the feed, never the domain events themselves.
 */
export const PUBLIC_EVENT_TYPES = ["message.received", "message.sent", "message.delivered", "message.bounced", "domain.verified"] as const;
export const PublicEventType = z.enum(PUBLIC_EVENT_TYPES);
export type PublicEventType = z.infer<typeof PublicEventType>;

/** A public event id: `evt_` and the id of the domain event it was rendered from (a UUIDv7). */
export const PublicEventId = z.string().regex(/^evt_[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
/**
 * `evt_` and the domain event's id when that is a UUIDv7. A domain event whose id is derived
 * instead (name-based, version 8: a received message's, so that a redelivery files it once)
 * gets a UUIDv7 made of its `occurredAt` and the derived id's last 74 bits: deterministic
 * too, and time-ordered like every other public id (resuming a feed relies on it).
 */
export function publicEventId(domainEventId: string, occurredAt?: string): string {
  const hex = domainEventId.toLowerCase().replace(/-/g, "");
  if (hex[12] === "7" || occurredAt === undefined || hex.length !== 32) return `evt_${domainEventId}`;
  const ms = Math.max(0, Date.parse(occurredAt) || 0);
  const variant = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  const v7 = `${ms.toString(16).padStart(12, "0").slice(-12)}7${hex.slice(13, 16)}${variant}${hex.slice(17)}`;
  return `evt_${v7.slice(0, 8)}-${v7.slice(8, 12)}-${v7.slice(12, 16)}-${v7.slice(16, 20)}-${v7.slice(20)}`;
}
/** The domain event id inside a public event id (its first 48 bits are its time in ms); not for a derived one (see publicEventId). */
export const domainEventIdOf = (eventId: string) => eventId.slice("evt_".length);
/** When the domain event behind a public event id happened (UUIDv7 timestamp), in ms since the epoch. */
export function publicEventTime(eventId: string): number {
  const hex = domainEventIdOf(eventId).replace(/-/g, "").slice(0, 12);
  return Number.parseInt(hex, 16);
}

/**
 * Each of a message's bodies travels in a feed event up to this many bytes of UTF-8
 * (cut at a character boundary, `bodyTruncated` set); the whole message stays readable
 * through `GET /v1/inboxes/:id/messages/:messageId`.
 */
export const FEED_BODY_MAX_BYTES = 256 * 1024;

export const FeedAttachment = z.object({ id: z.uuid(), filename: z.string(), contentType: z.string(), sizeBytes: z.number().int().nonnegative() });

/** The message a message event is about, as the mailbox renders it for the feed. */
export const FeedMessage = z.object({
  messageId: z.uuid(),
  inboxId: z.uuid(),
  threadId: z.uuid(),
  direction: z.enum(["inbound", "outbound"]),
  /** `"Name" <address>`, or the address alone. */
  from: z.string(),
  fromAddress: z.string(),
  to: z.array(z.string()),
  cc: z.array(z.string()),
  subject: z.string(),
  preview: z.string(),
  plainBody: z.string().nullable(),
  htmlBody: z.string().nullable(),
  bodyTruncated: z.boolean(),
  messageIdHeader: z.string(),
  inReplyTo: z.string().nullable(),
  attachments: z.array(FeedAttachment),
  /** When it was received or sent (ISO-8601). */
  timestamp: z.iso.datetime(),
});
export type FeedMessage = z.infer<typeof FeedMessage>;

export const FeedThread = z.object({ threadId: z.uuid(), subject: z.string() });
export type FeedThread = z.infer<typeof FeedThread>;

/** One entry of the feed stream (JSON; its `Nats-Msg-Id` header is `eventId`). */
export const FeedEvent = z.object({
  eventId: PublicEventId,
  eventType: PublicEventType,
  tenantId: z.uuid(),
  workspaceId: z.uuid(),
  /** The inbox a message event is about; null for domain events. */
  inboxId: z.uuid().nullable(),
  occurredAt: z.iso.datetime(),
  message: FeedMessage.optional(),
  thread: FeedThread.optional(),
  /** message.delivered: the recipients reached, and how. */
  delivery: z.object({ recipients: z.array(z.string()), via: z.enum(["local", "relay", "mx"]) }).optional(),
  /** message.bounced: the recipients that refused it, and why. */
  bounce: z.object({ recipients: z.array(z.string()), reason: z.string() }).optional(),
  /** domain.verified. */
  domain: z.object({ domainId: z.uuid(), domain: z.string() }).optional(),
});
export type FeedEvent = z.infer<typeof FeedEvent>;

/** How long the feed keeps events: the window inside which a WebSocket client may resume (default). */
export const FEED_RETENTION_DEFAULT_S = 24 * 3600;

/** The JetStream stream holding the rendered public events under a prefix (written by realtime only). */
export function feedStreamName(prefix: string): string {
  const tag = prefix.replace(/[^A-Za-z0-9]/g, "").toUpperCase();
  return tag ? `${tag}_FEED` : "FEED";
}

/**
 * `rt.<tenantId>.<workspaceId>.<inboxId or _>.<event type>` (the type's dot makes it two
 * tokens): one wildcard follows a tenant (`rt.<t>.>`), a workspace (`rt.<t>.<w>.>`) or an
 * inbox (`rt.<t>.<w>.<i>.>`).
 */
export const feedSubject = (prefix: string, e: Pick<FeedEvent, "tenantId" | "workspaceId" | "inboxId" | "eventType">) =>
  `${prefix}rt.${e.tenantId}.${e.workspaceId}.${e.inboxId ?? NO_SCOPE_TOKEN}.${e.eventType}`;
/** Where an entry is routed, read from its subject (see feedSubject) without parsing the entry; undefined for another subject. */
export function feedRouteOf(prefix: string, subject: string): { tenantId: string; workspaceId: string; inboxId: string | null } | undefined {
  if (!subject.startsWith(`${prefix}rt.`)) return undefined;
  const [tenantId, workspaceId, inbox] = subject.slice(prefix.length + 3).split(".", 3);
  if (!tenantId || !workspaceId || !inbox) return undefined;
  return { tenantId, workspaceId, inboxId: inbox === NO_SCOPE_TOKEN ? null : inbox };
}
/** The one filter subject following a tenant, a workspace of it, or an inbox of that. */
export function feedFilterOf(prefix: string, scope: { tenantId: string; workspaceId?: string; inboxId?: string }): string {
  if (scope.workspaceId && scope.inboxId) return `${prefix}rt.${scope.tenantId}.${scope.workspaceId}.${scope.inboxId}.>`;
  if (scope.workspaceId) return `${prefix}rt.${scope.tenantId}.${scope.workspaceId}.>`;
  return `${prefix}rt.${scope.tenantId}.>`;
}
export const allFeedSubjects = (prefix: string) => `${prefix}rt.>`;
