import { z } from "zod";
import { parseEventWith, type EventEnvelope } from "./envelope.ts";
import { PublicEventType } from "./realtime-feed.ts";

export const REALTIME_CONTEXT = "realtime";

/**
 * A webhook endpoint registered. The signing secret is never in an event (events are read
 * by consumers outside the project): it stays in realtime's own store.
 */
export const WebhookCreatedV1 = z.object({
  webhookId: z.uuid(),
  url: z.string(),
  events: z.array(PublicEventType),
  isActive: z.boolean(),
  /** The workspace it fires for; null: every workspace of the tenant. */
  workspaceId: z.uuid().nullable(),
});
export const WebhookUpdatedV1 = z.object({
  webhookId: z.uuid(),
  url: z.string().optional(),
  events: z.array(PublicEventType).optional(),
  isActive: z.boolean().optional(),
});
/** `workspace_deleted`: its workspace ended. Absent: deleted on purpose. */
export const WebhookDeletedV1 = z.object({ webhookId: z.uuid(), reason: z.enum(["workspace_deleted"]).optional() });

export const realtimeEventSchemas = {
  WebhookCreated: { 1: WebhookCreatedV1 },
  WebhookUpdated: { 1: WebhookUpdatedV1 },
  WebhookDeleted: { 1: WebhookDeletedV1 },
} as const;

export type RealtimeEvent =
  | { type: "WebhookCreated"; schemaVersion: 1; data: z.infer<typeof WebhookCreatedV1> }
  | { type: "WebhookUpdated"; schemaVersion: 1; data: z.infer<typeof WebhookUpdatedV1> }
  | { type: "WebhookDeleted"; schemaVersion: 1; data: z.infer<typeof WebhookDeletedV1> };

export type RealtimeEnvelope = Omit<EventEnvelope, "type" | "schemaVersion" | "data"> & RealtimeEvent;

export const parseRealtimeEvent = (raw: unknown) => parseEventWith<RealtimeEnvelope>(realtimeEventSchemas, raw);
