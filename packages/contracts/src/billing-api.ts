import { z } from "zod";

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
  status: z.enum(["active"]),
  usage: z.object({ inboxes: Used, domains: Used, emailsPerMonth: Used }),
  /** The current UTC calendar month, `[start, end)`. */
  period: z.object({ start: z.iso.datetime(), end: z.iso.datetime() }),
});
export type BillingAccount = z.infer<typeof BillingAccount>;
