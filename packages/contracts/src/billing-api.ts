import { z } from "zod";
import { BillingStatus } from "./billing-events.ts";

const noControl = (s: string) => !/[\u0000-\u001f\u007f]/.test(s);
/** A window bound as the client wrote it: ISO-8601, epoch seconds or epoch milliseconds (billing reads it). */
const TimeParam = z.string().min(1).max(40).refine(noControl, "must not contain control characters");

/** `GET /v1/metrics`: a window (default: the last 30 days) and an optional narrower scope. */
export const MetricsQuery = z.object({
  from: TimeParam.optional(),
  to: TimeParam.optional(),
  workspace: z.uuid("must be a UUID").optional(),
  inbox: z.uuid("must be a UUID").optional(),
});
export type MetricsQuery = z.infer<typeof MetricsQuery>;

/** Usage over a window `[from, to)`, and what the scope holds now. */
export const Metrics = z.object({
  window: z.object({ from: z.iso.datetime(), to: z.iso.datetime() }),
  scope: z.object({ tenantId: z.uuid(), workspaceId: z.uuid().nullable(), inboxId: z.uuid().nullable() }),
  counts: z.object({
    /** Messages sent (each send once, whatever its recipients). */
    sent: z.number().int().nonnegative(),
    /** Messages filed into an inbox (over SMTP, or from a local sender). */
    received: z.number().int().nonnegative(),
    /** Sent messages that bounced (each message once, at its first bounce). */
    bounced: z.number().int().nonnegative(),
  }),
  resources: z.object({ inboxes: z.number().int().nonnegative(), domains: z.number().int().nonnegative() }),
});
export type Metrics = z.infer<typeof Metrics>;

/** `GET /v1/billing`: no parameters. */
export const BillingQuery = z.object({});
export type BillingQuery = z.infer<typeof BillingQuery>;

const Limit = z.number().int().nonnegative().nullable();
const Used = z.number().int().nonnegative();

/** The tenant's plan (limits: null is unlimited) and what it uses of it in the current UTC month. */
export const BillingAccount = z.object({
  /** null when no plans are configured (nothing is limited). */
  plan: z
    .object({
      id: z.string(),
      name: z.string(),
      limits: z.object({ inboxes: Limit, emailsPerMonth: Limit, domains: Limit }),
    })
    .nullable(),
  /** active, past_due (payment failed, in its grace period), paused (sends refused), canceled (subscription ended, on the free plan). */
  status: BillingStatus,
  usage: z.object({ inboxes: Used, domains: Used, emailsPerMonth: Used }),
  /** The subscription's current period; without one, the current UTC calendar month, `[start, end)`. */
  period: z.object({ start: z.iso.datetime(), end: z.iso.datetime() }),
});
export type BillingAccount = z.infer<typeof BillingAccount>;

/** `POST /v1/billing/checkout`: the plan to subscribe to (one with a Stripe price). */
export const CheckoutRequest = z.strictObject({ plan: z.string().min(1).max(64) });
export type CheckoutRequest = z.infer<typeof CheckoutRequest>;

/** `POST /v1/billing/portal`: no parameters. */
export const PortalRequest = z.object({});
export type PortalRequest = z.infer<typeof PortalRequest>;

/** Where to send the tenant's browser: a Stripe Checkout Session or customer-portal URL. */
export const BillingUrl = z.object({ url: z.url() });
export type BillingUrl = z.infer<typeof BillingUrl>;

/** Largest Stripe webhook body accepted (Stripe's events are a few KB). */
export const STRIPE_WEBHOOK_MAX_BYTES = 256 * 1024;

/** A Stripe webhook as the gateway received it: the raw body (base64) and its Stripe-Signature header. */
export const StripeWebhookRequest = z.object({
  payload: z.base64().max(Math.ceil(STRIPE_WEBHOOK_MAX_BYTES / 3) * 4),
  signature: z.string().max(4096),
});
export type StripeWebhookRequest = z.infer<typeof StripeWebhookRequest>;

export const StripeWebhookReply = z.object({ received: z.literal(true) });
export type StripeWebhookReply = z.infer<typeof StripeWebhookReply>;
