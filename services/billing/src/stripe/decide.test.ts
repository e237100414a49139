import { describe, expect, it } from "vitest";
import type { Plan } from "../config.ts";
import { decideGrace, decideStripeEvent, effectiveStatus, type TenantState } from "./decide.ts";

const T = "0190a0b0-0000-7000-8000-000000000001";
const free: Plan = { id: "free", name: "Free", stripePriceId: null, limits: { inboxes: 3, emailsPerMonth: 100, domains: 1 } };
const pro: Plan = { id: "pro", name: "Pro", stripePriceId: "price_pro", limits: { inboxes: 10, emailsPerMonth: 1000, domains: 5 } };
const now = new Date("2026-12-01T00:00:00Z");
const secs = (d: Date) => Math.floor(d.getTime() / 1000);
const policy = { plans: [free, pro], defaultPlan: free, graceMs: 7 * 86_400_000, now };
const base: TenantState = {
  tenantId: T,
  plan: { planId: "free", limits: free.limits, version: 1 },
  billing: {
    status: "active",
    customerId: "cus_1",
    subscriptionId: "sub_1",
    periodStart: null,
    periodEnd: null,
    pastDueSince: null,
    stripeAt: secs(now) - 100,
  },
  version: 2,
};
const ids = { customerId: "cus_1", subscriptionId: "sub_1" };

describe("decideStripeEvent", () => {
  it("an event older than the newest applied one changes nothing", () => {
    expect(decideStripeEvent(base, { kind: "payment_failed", at: secs(now) - 101, ...ids }, policy)).toEqual([]);
  });

  it("another customer's event changes nothing, whatever it is (the tenant's customer is billing's own record)", () => {
    const other = { customerId: "cus_other", subscriptionId: "sub_other" };
    expect(decideStripeEvent(base, { kind: "payment_failed", at: secs(now), ...other }, policy)).toEqual([]);
    expect(decideStripeEvent(base, { kind: "checkout", at: secs(now), ...other }, policy)).toEqual([]);
    const ended = {
      kind: "subscription" as const,
      at: secs(now),
      ...other,
      deleted: true,
      subStatus: "canceled",
      priceId: null,
      periodStart: null,
      periodEnd: null,
    };
    expect(decideStripeEvent(base, ended, policy)).toEqual([]);
  });

  it("a subscription not paid for (incomplete, past due, unpaid) never moves the tenant to its price's plan", () => {
    for (const subStatus of ["incomplete", "past_due", "unpaid"]) {
      const d = decideStripeEvent(
        base,
        { kind: "subscription", at: secs(now), ...ids, deleted: false, subStatus, priceId: "price_pro", periodStart: now, periodEnd: null },
        policy,
      );
      expect(d.map((x) => x.event.type)).not.toContain("TenantPlanChanged");
    }
  });

  it("an invoice of no subscription (a one-off) or of another subscription than the tenant's changes nothing", () => {
    for (const kind of ["payment_failed", "invoice_paid"] as const) {
      expect(decideStripeEvent(base, { kind, at: secs(now), customerId: "cus_1", subscriptionId: null }, policy)).toEqual([]);
      expect(decideStripeEvent(base, { kind, at: secs(now), customerId: "cus_1", subscriptionId: "sub_old" }, policy)).toEqual([]);
    }
  });

  it("a subscription on a paid price moves the plan, then the billing, versions in order", () => {
    const d = decideStripeEvent(
      base,
      { kind: "subscription", at: secs(now), ...ids, deleted: false, subStatus: "active", priceId: "price_pro", periodStart: now, periodEnd: null },
      policy,
    );
    expect(d.map((x) => [x.event.type, x.aggregateVersion])).toEqual([
      ["TenantPlanChanged", 3],
      ["TenantBillingChanged", 4],
    ]);
  });

  it("a payment failure: past due from its time; beyond the grace period: paused", () => {
    const recent = decideStripeEvent(base, { kind: "payment_failed", at: secs(now) - 50, ...ids }, policy);
    expect(recent[0]!.event.data).toMatchObject({ status: "past_due", pastDueSince: new Date((secs(now) - 50) * 1000).toISOString() });
    const old = { ...base, billing: { ...base.billing!, stripeAt: 0 } };
    expect(decideStripeEvent(old, { kind: "payment_failed", at: secs(now) - 8 * 86_400, ...ids }, policy)[0]!.event.data).toMatchObject({ status: "paused" });
  });

  it("deleted: canceled on a free default plan, paused when the default plan is paid", () => {
    const ev = {
      kind: "subscription" as const,
      at: secs(now),
      ...ids,
      deleted: true,
      subStatus: "canceled",
      priceId: "price_pro",
      periodStart: null,
      periodEnd: null,
    };
    const onPro = { ...base, plan: { planId: "pro", limits: pro.limits, version: 1 } };
    expect(decideStripeEvent(onPro, ev, policy).map((x) => x.event.type)).toEqual(["TenantPlanChanged", "TenantBillingChanged"]);
    expect(decideStripeEvent(onPro, ev, policy)[1]!.event.data).toMatchObject({ status: "canceled", subscriptionId: null });
    expect(decideStripeEvent(onPro, ev, { ...policy, defaultPlan: pro })).toMatchObject([
      { event: { type: "TenantBillingChanged", data: { status: "paused" } } },
    ]);
  });

  it("another subscription ending changes nothing", () => {
    const ev = {
      kind: "subscription" as const,
      at: secs(now),
      customerId: "cus_1",
      subscriptionId: "sub_old",
      deleted: true,
      subStatus: "canceled",
      priceId: null,
      periodStart: null,
      periodEnd: null,
    };
    expect(decideStripeEvent(base, ev, policy)).toEqual([]);
  });
});

describe("grace", () => {
  it("past due for longer than the grace period is paused; shorter is not", () => {
    const due = { ...base, billing: { ...base.billing!, status: "past_due" as const, pastDueSince: new Date(now.getTime() - 8 * 86_400_000) } };
    expect(effectiveStatus(due.billing, policy)).toBe("paused");
    expect(decideGrace(due, policy)[0]!.event.data).toMatchObject({ status: "paused" });
    const fresh = { ...due, billing: { ...due.billing, pastDueSince: new Date(now.getTime() - 86_400_000) } };
    expect(effectiveStatus(fresh.billing, policy)).toBe("past_due");
    expect(decideGrace(fresh, policy)).toEqual([]);
  });
});
