import { z } from "zod";
import { parseEventWith, type EventEnvelope } from "./envelope.ts";

export const BILLING_CONTEXT = "billing";

/** A plan limit: a maximum, or null for unlimited. */
const Limit = z.number().int().nonnegative().nullable();

/** What a plan allows a tenant: live inboxes, domains, and messages sent per UTC month. */
export const PlanLimits = z.object({ inboxes: Limit, emailsPerMonth: Limit, domains: Limit });
export type PlanLimits = z.infer<typeof PlanLimits>;

/**
 * The tenant is on a plan, with these limits (a new tenant on the default plan, or the
 * operator changed the plans' limits). The limits are in the event, so whoever enforces
 * them needs no copy of the plans' configuration.
 */
export const TenantPlanChangedV1 = z.object({
  tenantId: z.uuid(),
  planId: z.string().min(1).max(64),
  limits: PlanLimits,
});

/** The aggregate id of the platform's default limits (one aggregate, no tenant). */
export const DEFAULT_LIMITS_AGGREGATE = "00000000-0000-4000-8000-000000000000";

/**
 * The limits of the default plan, which every new tenant is put on: a platform-level fact
 * (tenantId and workspaceId null), announced at billing's start when they differ from the
 * last announced. Whoever enforces limits applies them to a tenant billing has not told its
 * own plan yet (the moments between TenantCreated and its TenantPlanChanged). `planId` and
 * `limits` null: no plans are configured, nothing is limited.
 */
export const DefaultLimitsSetV1 = z.object({
  planId: z.string().min(1).max(64).nullable(),
  limits: PlanLimits.nullable(),
});

/** Where a tenant's payments stand: paying (or on a free plan), payment failed, paused (no sends), subscription ended. */
export const BillingStatus = z.enum(["active", "past_due", "paused", "canceled"]);
export type BillingStatus = z.infer<typeof BillingStatus>;

const StripeId = z.string().min(1).max(255);

/**
 * The tenant's Stripe billing changed: its customer, subscription, status, period. A
 * `paused` tenant cannot send (the mailbox refuses with INBOX_PAUSED); reading and
 * receiving go on. `stripeAt` is the Stripe `created` time (epoch seconds) of the newest
 * Stripe event applied: an older one changes nothing.
 */
export const TenantBillingChangedV1 = z.object({
  tenantId: z.uuid(),
  status: BillingStatus,
  customerId: StripeId.nullable(),
  subscriptionId: StripeId.nullable(),
  periodStart: z.iso.datetime().nullable(),
  periodEnd: z.iso.datetime().nullable(),
  /** When the payment failed (status past_due or paused by it); null otherwise. */
  pastDueSince: z.iso.datetime().nullable(),
  stripeAt: z.number().int().nonnegative().nullable(),
});

export const billingEventSchemas = {
  TenantPlanChanged: { 1: TenantPlanChangedV1 },
  TenantBillingChanged: { 1: TenantBillingChangedV1 },
  DefaultLimitsSet: { 1: DefaultLimitsSetV1 },
} as const;

export type BillingEvent =
  | { type: "TenantPlanChanged"; schemaVersion: 1; data: z.infer<typeof TenantPlanChangedV1> }
  | { type: "TenantBillingChanged"; schemaVersion: 1; data: z.infer<typeof TenantBillingChangedV1> }
  | { type: "DefaultLimitsSet"; schemaVersion: 1; data: z.infer<typeof DefaultLimitsSetV1> };

export type BillingEnvelope = Omit<EventEnvelope, "type" | "schemaVersion" | "data"> & BillingEvent;

export const parseBillingEvent = (raw: unknown) => parseEventWith<BillingEnvelope>(billingEventSchemas, raw);
