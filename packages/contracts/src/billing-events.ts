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

export const billingEventSchemas = {
  TenantPlanChanged: { 1: TenantPlanChangedV1 },
} as const;

export type BillingEvent = { type: "TenantPlanChanged"; schemaVersion: 1; data: z.infer<typeof TenantPlanChangedV1> };

export type BillingEnvelope = Omit<EventEnvelope, "type" | "schemaVersion" | "data"> & BillingEvent;

export const parseBillingEvent = (raw: unknown) => parseEventWith<BillingEnvelope>(billingEventSchemas, raw);
