import { z } from "zod";
import { type FeedEvent, PUBLIC_EVENT_TYPES, PublicEventId, PublicEventType } from "./realtime-feed.ts";

// WebSocket frames: what a client may send and what the server sends (snake_case, as the reference has them).

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
