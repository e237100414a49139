import { describe, expect, it } from "vitest";
import { decideSetPlan } from "./decide.ts";

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
