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
/** The one filter subject following a tenant, a workspace of it, or an inbox of that. */
export function feedFilterOf(prefix: string, scope: { tenantId: string; workspaceId?: string; inboxId?: string }): string {
  if (scope.workspaceId && scope.inboxId) return `${prefix}rt.${scope.tenantId}.${scope.workspaceId}.${scope.inboxId}.>`;
  if (scope.workspaceId) return `${prefix}rt.${scope.tenantId}.${scope.workspaceId}.>`;
  return `${prefix}rt.${scope.tenantId}.>`;
}
export const allFeedSubjects = (prefix: string) => `${prefix}rt.>`;

// ---------------------------------------------------------------------------------------
// WebSocket frames (snake_case, as the reference has them)

/** Largest client frame the server reads; a larger one gets an `error` frame. */
export const WS_MAX_CLIENT_FRAME_BYTES = 16 * 1024;
/** Most ids in one filter of a subscribe frame. */
export const WS_MAX_FILTER_IDS = 100;

const Ids = z.array(z.uuid()).max(WS_MAX_FILTER_IDS);
export const SubscribeFrame = z.strictObject({
  type: z.literal("subscribe"),
  event_types: z.array(PublicEventType).max(PUBLIC_EVENT_TYPES.length).optional(),
  inbox_ids: Ids.optional(),
  workspace_ids: Ids.optional(),
  /** AgentMail's name for workspaces: an alias of `workspace_ids` (both may be given: their union). */
  pod_ids: Ids.optional(),
  /** Resume: the `event_id` of the last event frame the client saw (our extension). */
  last_event_id: PublicEventId.optional(),
});
export type SubscribeFrame = z.infer<typeof SubscribeFrame>;
/** The client may answer a `ping` (or send one); either way nothing but a `pong` comes back. */
export const ClientPingFrame = z.strictObject({ type: z.enum(["ping", "pong"]) });
export const ClientFrame = z.discriminatedUnion("type", [SubscribeFrame, ClientPingFrame]);
export type ClientFrame = z.infer<typeof ClientFrame>;

/**
 * Headers the gateway adds to an upgrade it hands a realtime replica, beside the scope token
 * (`Mam-Scope`, audience realtime); any the client sent itself are removed first.
 */
export const WsUpgradeHeaders = {
  /** `/v1/inboxes/:id/ws`: the inbox, checked in the key's scope. */
  inbox: "Mam-Inbox",
  /** Its address, for the `connected` frame. */
  inboxEmail: "Mam-Inbox-Email",
} as const;

/** Codes of `error` frames. */
export const WsErrorCode = z.enum(["INVALID_FRAME", "FRAME_TOO_LARGE", "NOT_FOUND", "RESUME_TOO_OLD", "RESUME_UNKNOWN_EVENT", "RATE_LIMITED"]);
export type WsErrorCode = z.infer<typeof WsErrorCode>;

/** Close codes (RFC 6455 §7.4: 4000-4999 are ours). */
export const WsClose = {
  /** The server is shutting down or moving the client: reconnect (with last_event_id). */
  goingAway: 1001,
  /** The client did not keep up: its send buffer passed the cap. Reconnect and resume. */
  slowConsumer: 4008,
  /** The key was revoked, or its workspace or inbox deleted. Do not reconnect with it. */
  revoked: 4001,
  /** Too many connections for this key's tenant on this server. */
  tooManyConnections: 4029,
} as const;

const WsMessage = z.object({
  message_id: z.uuid(),
  inbox_id: z.uuid(),
  thread_id: z.uuid(),
  direction: z.enum(["inbound", "outbound"]),
  from: z.string(),
  to: z.array(z.string()),
  cc: z.array(z.string()),
  subject: z.string(),
  preview: z.string(),
  plain_body: z.string().nullable(),
  html_body: z.string().nullable(),
  body_truncated: z.boolean(),
  message_id_header: z.string(),
  in_reply_to: z.string().nullable(),
  attachments: z.array(z.object({ id: z.uuid(), filename: z.string(), content_type: z.string(), size_bytes: z.number().int() })),
  timestamp: z.string(),
});

export const EventFrame = z.object({
  type: z.literal("event"),
  event_type: PublicEventType,
  event_id: PublicEventId,
  workspace_id: z.uuid(),
  /** The same as `workspace_id` (AgentMail's name). */
  pod_id: z.uuid(),
  inbox_id: z.uuid().nullable(),
  occurred_at: z.string(),
  message: WsMessage.optional(),
  thread: z.object({ thread_id: z.uuid(), subject: z.string() }).optional(),
  delivery: z.object({ recipients: z.array(z.string()), via: z.string() }).optional(),
  bounce: z.object({ recipients: z.array(z.string()), reason: z.string() }).optional(),
  domain: z.object({ domain_id: z.uuid(), domain: z.string() }).optional(),
});
export type EventFrame = z.infer<typeof EventFrame>;

export const ServerFrame = z.discriminatedUnion("type", [
  /** Right after the handshake; camelCase, as the reference has it. `inboxId`/`email` only for an inbox key or the per-inbox path. */
  z.object({
    type: z.literal("connected"),
    keyKind: z.string(),
    tenantId: z.uuid().nullable(),
    workspaceId: z.uuid().nullable(),
    inboxId: z.uuid().nullable(),
    email: z.string().nullable(),
  }),
  z.object({
    type: z.literal("subscribed"),
    event_types: z.array(PublicEventType),
    inbox_ids: z.array(z.uuid()),
    workspace_ids: z.array(z.uuid()),
    pod_ids: z.array(z.uuid()),
    last_event_id: PublicEventId.optional(),
  }),
  EventFrame,
  z.object({ type: z.literal("ping"), timestamp: z.string() }),
  z.object({ type: z.literal("pong"), timestamp: z.string() }),
  z.object({ type: z.literal("error"), code: WsErrorCode, message: z.string() }),
]);
export type ServerFrame = z.infer<typeof ServerFrame>;

/** A feed event as the WebSocket sends it. */
export function toEventFrame(e: FeedEvent): EventFrame {
  const m = e.message;
  return {
    type: "event",
    event_type: e.eventType,
    event_id: e.eventId,
    workspace_id: e.workspaceId,
    pod_id: e.workspaceId,
    inbox_id: e.inboxId,
    occurred_at: e.occurredAt,
    ...(m && {
      message: {
        message_id: m.messageId,
        inbox_id: m.inboxId,
        thread_id: m.threadId,
        direction: m.direction,
        from: m.from,
        to: m.to,
        cc: m.cc,
        subject: m.subject,
        preview: m.preview,
        plain_body: m.plainBody,
        html_body: m.htmlBody,
        body_truncated: m.bodyTruncated,
        message_id_header: m.messageIdHeader,
        in_reply_to: m.inReplyTo,
        attachments: m.attachments.map((a) => ({ id: a.id, filename: a.filename, content_type: a.contentType, size_bytes: a.sizeBytes })),
        timestamp: m.timestamp,
      },
    }),
    ...(e.thread && { thread: { thread_id: e.thread.threadId, subject: e.thread.subject } }),
    ...(e.delivery && { delivery: e.delivery }),
    ...(e.bounce && { bounce: e.bounce }),
    ...(e.domain && { domain: { domain_id: e.domain.domainId, domain: e.domain.domain } }),
  };
}

// ---------------------------------------------------------------------------------------
// Webhook deliveries (camelCase and flat, as the reference has them)

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
