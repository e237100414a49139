import type { BillingEvent, BillingStatus } from "@mam/contracts/billing-events.ts";
import type { EventDraft } from "@mam/service-kit/commands.ts";
import type { Plan } from "../config.ts";
import { decideSetPlan, type TenantPlanState } from "../plans/decide.ts";

/** A tenant's Stripe billing as billing's read model holds it. */
export interface TenantBilling {
  status: BillingStatus;
  customerId: string | null;
  subscriptionId: string | null;
  periodStart: Date | null;
  periodEnd: Date | null;
  pastDueSince: Date | null;
  /** Stripe `created` (epoch seconds) of the newest Stripe event applied. */
  stripeAt: number | null;
}

/** What a Stripe decision reads: the tenant's plan, its billing, the aggregate's version. */
export interface TenantState {
  tenantId: string;
  plan: TenantPlanState | null;
  billing: TenantBilling | null;
  version: number;
}

/** A Stripe event, reduced to what billing acts on (read from the event's data object). */
export type StripeChange = { at: number; customerId: string | null; subscriptionId: string | null } & (
  | { kind: "checkout" }
  | { kind: "subscription"; deleted: boolean; subStatus: string; priceId: string | null; periodStart: Date | null; periodEnd: Date | null }
  | { kind: "invoice_paid" }
  | { kind: "payment_failed" }
);

export interface StripePolicy {
  plans: Plan[];
  defaultPlan: Plan;
  graceMs: number;
  now: Date;
}

const NONE: TenantBilling = {
  status: "active",
  customerId: null,
  subscriptionId: null,
  periodStart: null,
  periodEnd: null,
  pastDueSince: null,
  stripeAt: null,
};

/** Past due for longer than the grace period: paused. */
const graced = (b: TenantBilling, p: Pick<StripePolicy, "graceMs" | "now">): TenantBilling =>
  b.status === "past_due" && b.pastDueSince && p.now.getTime() - b.pastDueSince.getTime() >= p.graceMs ? { ...b, status: "paused" } : b;

const ENDED = new Set(["canceled", "incomplete_expired"]);
const PAYING = new Set(["active", "trialing"]);
const FAILING = new Set(["past_due", "unpaid"]);

/** The tenant's billing after a Stripe event, and the plan it moves to (undefined: unchanged). */
export function nextBilling(cur: TenantBilling, ev: StripeChange, p: StripePolicy): { next: TenantBilling; plan?: Plan } | null {
  // An event older than the newest applied one says nothing new.
  if (cur.stripeAt !== null && ev.at < cur.stripeAt) return null;
  // Another customer's event says nothing about this tenant (its customer is recorded by billing alone).
  if (cur.customerId && ev.customerId && ev.customerId !== cur.customerId) return null;
  // An invoice speaks for the tenant's subscription only: a one-off invoice, or one of another
  // subscription, neither pauses nor resumes the tenant.
  if ((ev.kind === "invoice_paid" || ev.kind === "payment_failed") && (!ev.subscriptionId || (cur.subscriptionId && ev.subscriptionId !== cur.subscriptionId)))
    return null;
  const next: TenantBilling = { ...cur, stripeAt: ev.at, customerId: cur.customerId ?? ev.customerId };
  const failedAt = () => cur.pastDueSince ?? new Date(ev.at * 1000);
  let plan: Plan | undefined;
  switch (ev.kind) {
    case "checkout":
      next.subscriptionId = ev.subscriptionId ?? cur.subscriptionId;
      break;
    case "subscription": {
      if (ev.deleted || ENDED.has(ev.subStatus)) {
        // Another subscription than the tenant's ending changes nothing.
        if (cur.subscriptionId && ev.subscriptionId && ev.subscriptionId !== cur.subscriptionId) return null;
        const free = p.defaultPlan.stripePriceId === null;
        Object.assign(next, { subscriptionId: null, periodStart: null, periodEnd: null, pastDueSince: null, status: free ? "canceled" : "paused" });
        if (free) plan = p.defaultPlan;
        break;
      }
      next.subscriptionId = ev.subscriptionId ?? cur.subscriptionId;
      next.periodStart = ev.periodStart ?? cur.periodStart;
      next.periodEnd = ev.periodEnd ?? cur.periodEnd;
      // Only a subscription being paid for (or trialing) moves the plan: an incomplete one (its
      // first payment pending or failed) or a failing one keeps the tenant where it was.
      plan = ev.priceId && PAYING.has(ev.subStatus) ? p.plans.find((x) => x.stripePriceId === ev.priceId) : undefined;
      if (PAYING.has(ev.subStatus)) Object.assign(next, { status: "active", pastDueSince: null });
      else if (FAILING.has(ev.subStatus)) Object.assign(next, { status: cur.status === "paused" ? "paused" : "past_due", pastDueSince: failedAt() });
      else if (ev.subStatus === "paused") next.status = "paused";
      break;
    }
    case "invoice_paid":
      Object.assign(next, { status: "active", pastDueSince: null });
      break;
    case "payment_failed":
      Object.assign(next, { status: cur.status === "paused" ? "paused" : "past_due", pastDueSince: failedAt() });
      break;
  }
  return { next: graced(next, p), plan };
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const sameBilling = (a: TenantBilling, b: TenantBilling) =>
  a.status === b.status &&
  a.customerId === b.customerId &&
  a.subscriptionId === b.subscriptionId &&
  iso(a.periodStart) === iso(b.periodStart) &&
  iso(a.periodEnd) === iso(b.periodEnd) &&
  iso(a.pastDueSince) === iso(b.pastDueSince);

/** TenantBillingChanged when the billing differs (the newest Stripe time alone is no change). */
export function billingDraft(s: TenantState, next: TenantBilling, version: number): EventDraft<BillingEvent>[] {
  if (s.billing && sameBilling(s.billing, next)) return [];
  return [
    {
      event: {
        type: "TenantBillingChanged",
        schemaVersion: 1,
        data: {
          tenantId: s.tenantId,
          status: next.status,
          customerId: next.customerId,
          subscriptionId: next.subscriptionId,
          periodStart: iso(next.periodStart),
          periodEnd: iso(next.periodEnd),
          pastDueSince: iso(next.pastDueSince),
          stripeAt: next.stripeAt,
        },
      },
      tenantId: s.tenantId,
      workspaceId: null,
      aggregateId: s.tenantId,
      aggregateVersion: version + 1,
    },
  ];
}

/** A Stripe event's effect on the tenant: its billing, and its plan when the price names another one. */
export function decideStripeEvent(s: TenantState, ev: StripeChange, p: StripePolicy): EventDraft<BillingEvent>[] {
  const r = nextBilling(s.billing ?? NONE, ev, p);
  if (!r) return [];
  const drafts = r.plan ? decideSetPlan({ tenantId: s.tenantId, plan: r.plan, onlyIfNone: false }, s.plan, s.version) : [];
  return [...drafts, ...billingDraft(s, r.next, s.version + drafts.length)];
}

/** Pauses a tenant whose grace period after a failed payment has passed. */
export function decideGrace(s: TenantState, p: Pick<StripePolicy, "graceMs" | "now">): EventDraft<BillingEvent>[] {
  if (!s.billing) return [];
  return billingDraft(s, graced(s.billing, p), s.version);
}

/** Records the tenant's new Stripe customer, unless it has one. */
export function decideCustomer(s: TenantState, customerId: string): EventDraft<BillingEvent>[] {
  if (s.billing?.customerId) return [];
  return billingDraft(s, { ...(s.billing ?? NONE), customerId }, s.version);
}

/** The status a reader sees: past due beyond the grace period is paused, even before the check records it. */
export const effectiveStatus = (b: TenantBilling | null, p: Pick<StripePolicy, "graceMs" | "now">): BillingStatus => (b ? graced(b, p).status : "active");
