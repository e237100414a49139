import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../config.ts";

const FREE = { id: "free", name: "Free", stripePriceId: null, limits: { inboxes: 3, emailsPerMonth: 100, domains: 1 } };

describe("BILLING_PLANS", () => {
  it("unset: no plans", () => {
    expect(loadConfig({}).BILLING_PLANS).toBeUndefined();
  });

  it("inline JSON or a file path", () => {
    expect(loadConfig({ BILLING_PLANS: JSON.stringify([FREE]) }).BILLING_PLANS).toEqual([FREE]);
    const file = join(mkdtempSync(join(tmpdir(), "plans-")), "plans.json");
    writeFileSync(file, JSON.stringify([FREE, { ...FREE, id: "pro", name: "Pro", limits: { inboxes: null, emailsPerMonth: null, domains: 10 } }]));
    expect(loadConfig({ BILLING_PLANS: file, BILLING_DEFAULT_PLAN: "pro" }).BILLING_PLANS?.map((p) => p.id)).toEqual(["free", "pro"]);
  });

  it("a bad value stops the service, naming the variable", () => {
    const bad = [
      "[{",
      "/nonexistent/plans.json",
      JSON.stringify([]),
      JSON.stringify([{ ...FREE, limits: { inboxes: -1, emailsPerMonth: 1, domains: 1 } }]),
      JSON.stringify([{ ...FREE, limits: { inboxes: 1, domains: 1 } }]),
      JSON.stringify([FREE, FREE]),
      JSON.stringify([{ ...FREE, extra: true }]),
    ];
    for (const v of bad) expect(() => loadConfig({ BILLING_PLANS: v }), v).toThrow(/BILLING_PLANS/);
  });

  it("the default plan must be one of the plans", () => {
    expect(() => loadConfig({ BILLING_PLANS: JSON.stringify([FREE]), BILLING_DEFAULT_PLAN: "gold" })).toThrow(/BILLING_DEFAULT_PLAN/);
  });
});
