import { z } from "zod";
import { PaginationOut, pageFields } from "./pagination.ts";
import { PUBLIC_EVENT_TYPES, PublicEventId, PublicEventType } from "./realtime-feed.ts";

/** Longest webhook URL accepted. */
export const WEBHOOK_URL_MAX = 2048;
/** Most webhooks one tenant may have (all its workspaces together). */
export const MAX_WEBHOOKS_PER_TENANT = 50;

/** An absolute http(s) URL without credentials; where it may point is checked by the service. */
export const WebhookUrl = z
  .string()
  .max(WEBHOOK_URL_MAX)
  .refine((s) => {
    try {
      const u = new URL(s);
      return (u.protocol === "https:" || u.protocol === "http:") && !u.username && !u.password && u.hostname.length > 0;
    } catch {
      return false;
    }
  }, "must be an absolute http:// or https:// URL without user:password");

const Events = z
  .array(PublicEventType)
  .min(1)
  .max(PUBLIC_EVENT_TYPES.length)
  .refine((a) => new Set(a).size === a.length, "must not repeat an event type");

export const CreateWebhookBody = z.strictObject({ url: WebhookUrl, events: Events, isActive: z.boolean().optional() }).meta({ id: "CreateWebhookBody" });
export const UpdateWebhookBody = z
  .strictObject({ url: WebhookUrl.optional(), events: Events.optional(), isActive: z.boolean().optional() })
  .refine((b) => b.url !== undefined || b.events !== undefined || b.isActive !== undefined, "give at least one of url, events, isActive")
  .meta({ id: "UpdateWebhookBody" });

export const Webhook = z
  .object({
    id: z.uuid(),
    url: z.string(),
    events: z.array(PublicEventType),
    isActive: z.boolean(),
    /** The workspace it fires for; null: every workspace of the tenant. */
    workspaceId: z.uuid().nullable(),
    /** failing: an event's delivery ran out of retries; healthy again after a success. */
    status: z.enum(["healthy", "failing"]),
    failingSince: z.string().nullable(),
    lastDeliveryAt: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: "Webhook" });
export type Webhook = z.infer<typeof Webhook>;
/** The create response: the only time the signing secret is shown. */
export const CreatedWebhook = Webhook.extend({ secret: z.string() }).meta({ id: "CreatedWebhook" });
export const WebhookList = z.object({ webhooks: z.array(Webhook), pagination: PaginationOut });
/** The default limit is the most webhooks a tenant may have: a client that sends nothing still gets them all. */
export const ListWebhooksQuery = z.object(pageFields(MAX_WEBHOOKS_PER_TENANT, 100));
export const ListWebhooksRequest = z.object({ query: ListWebhooksQuery });
export const WebhookRef = z.object({ webhookId: z.string() });

export const ListDeliveriesQuery = z.object(pageFields(50, 100));

/** One attempt to deliver one event to one webhook, newest first in the log. */
export const WebhookAttempt = z
  .object({
    id: z.uuid(),
    eventId: PublicEventId,
    event: PublicEventType,
    /** 1 for the first try of this event. */
    attempt: z.number().int().min(1),
    attemptedAt: z.string(),
    /** The receiver's HTTP status; null when no response came (refused, timed out, blocked). */
    statusCode: z.number().int().nullable(),
    latencyMs: z.number().int().nonnegative(),
    success: z.boolean(),
    error: z.string().nullable(),
    /** When the next try is due; null after a success or the last try. */
    nextAttemptAt: z.string().nullable(),
  })
  .meta({ id: "WebhookAttempt" });
export const DeliveryPage = z.object({ deliveries: z.array(WebhookAttempt), pagination: PaginationOut });

/** Where a realtime replica takes WebSocket connections the gateway hands it. */
export const WsRoute = z.object({ host: z.string(), port: z.number().int().min(1).max(65535), replicaId: z.string() });
