import { describe, expect, it } from "vitest";
import { DEFAULT_LIMITS_AGGREGATE } from "@mam/contracts/billing-events.ts";
import { decideDefaultLimits, decideSetPlan } from "./decide.ts";

const T = "0190a0b0-0000-7000-8000-000000000001";
const free = { id: "free", limits: { inboxes: 3, emailsPerMonth: 100, domains: 1 } };

describe("decideSetPlan", () => {
  it("a tenant on no plan is put on it, version 1", () => {
    const [d] = decideSetPlan({ tenantId: T, plan: free, onlyIfNone: true }, null);
    expect(d).toMatchObject({ tenantId: T, workspaceId: null, aggregateId: T, aggregateVersion: 1 });
    expect(d!.event).toEqual({ type: "TenantPlanChanged", schemaVersion: 1, data: { tenantId: T, planId: "free", limits: free.limits } });
  });

  it("nothing when the tenant is on it with the same limits, or already on a plan for a new-tenant command", () => {
    const state = { planId: "free", limits: { ...free.limits }, version: 2 };
    expect(decideSetPlan({ tenantId: T, plan: free, onlyIfNone: false }, state)).toEqual([]);
    expect(decideSetPlan({ tenantId: T, plan: { id: "pro", limits: free.limits }, onlyIfNone: true }, state)).toEqual([]);
  });

  it("changed limits make a new version", () => {
    const state = { planId: "free", limits: { ...free.limits, inboxes: 2 }, version: 2 };
    expect(decideSetPlan({ tenantId: T, plan: free, onlyIfNone: false }, state)[0]).toMatchObject({ aggregateVersion: 3 });
  });
});

describe("decideDefaultLimits", () => {
  it("first announced: a platform-level event (no tenant), version 1", () => {
    const [d] = decideDefaultLimits(free, null);
    expect(d).toMatchObject({ tenantId: null, workspaceId: null, aggregateId: DEFAULT_LIMITS_AGGREGATE, aggregateVersion: 1 });
    expect(d!.event).toEqual({ type: "DefaultLimitsSet", schemaVersion: 1, data: { planId: "free", limits: free.limits } });
  });

  it("nothing when the same plan and limits (or none) were last announced", () => {
    expect(decideDefaultLimits(free, { planId: "free", limits: { ...free.limits }, version: 3 })).toEqual([]);
    expect(decideDefaultLimits(null, { planId: null, limits: null, version: 2 })).toEqual([]);
  });

  it("changed limits, another plan, or no plans any more: a new version", () => {
    const last = { planId: "free", limits: { ...free.limits }, version: 3 };
    const [roomier] = decideDefaultLimits({ id: "free", limits: { ...free.limits, inboxes: 4 } }, last);
    expect(roomier).toMatchObject({ aggregateVersion: 4, event: { data: { planId: "free", limits: { inboxes: 4 } } } });
    expect(decideDefaultLimits({ id: "pro", limits: free.limits }, last)[0]?.event.data).toEqual({ planId: "pro", limits: free.limits });
    expect(decideDefaultLimits(null, last)[0]?.event.data).toEqual({ planId: null, limits: null });
    expect(decideDefaultLimits(free, { planId: null, limits: null, version: 4 })[0]?.aggregateVersion).toBe(5);
  });
});
