import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

const PLANS = [
  { id: "tiny", name: "Tiny", stripePriceId: null, limits: { inboxes: 1, emailsPerMonth: 5, domains: 1 } },
  { id: "pro", name: "Pro", stripePriceId: "price_pro", limits: { inboxes: null, emailsPerMonth: null, domains: null } },
];

/** Waits until the mailbox's default limits row satisfies `ok` (billing's DefaultLimitsSet reached it). */
async function defaultLimits(s: Stack, ok: (row: { plan_id: string | null; inboxes: number | null } | undefined) => boolean, what: string) {
  const db = s.mailbox!.ctx.db;
  await waitFor(async () => ok(await db.selectFrom("default_limits").select(["plan_id", "inboxes"]).where("id", "=", 1).executeTakeFirst()), {
    timeoutMs: 20_000,
    intervalMs: 50,
    what,
  });
}

/** Fires `n` inbox creates for a new tenant at once, right after it is made; the statuses, sorted. */
async function raceNewTenant(s: Stack, name: string, n: number) {
  const t = await provisionTenant(s, name);
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) => s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: `${name.toLowerCase()}-${i}` } })),
  );
  return { tenantId: t.tenant.id, results };
}

/**
 * The new-tenant gap: a tenant's own limits reach the mailbox in two hops (TenantCreated →
 * billing → TenantPlanChanged), so until then the mailbox holds it to the default plan's
 * limits, which billing announces at start (DefaultLimitsSet); no plans: nothing limited.
 */
describe("default plan limits for a tenant billing has not reached", () => {
  let s: Stack;

  beforeAll(async () => {
    s = new Stack({ logLevel: "warn", billing: true, billingEnv: { BILLING_PLANS: JSON.stringify(PLANS), BILLING_DEFAULT_PLAN: "tiny" } });
    await s.start();
    await defaultLimits(s, (r) => r?.plan_id === "tiny" && r.inboxes === 1, "the default plan's limits in the mailbox");
  }, 120_000);

  afterAll(() => s?.stop());

  it("parallel inbox creates fired the moment the tenant is made: only the default plan's 1 succeeds", async () => {
    const { results } = await raceNewTenant(s, "Hasty", 8);
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    const refused = results.filter((r) => r.status === 403);
    expect(refused).toHaveLength(7);
    for (const r of refused) expect(r.body).toMatchObject({ code: "PLAN_LIMIT_REACHED", limit: "inboxes", max: 1 });
  });

  it("with billing down, a new tenant (never told its plan) is still held to the default plan", async () => {
    await s.billing!.destroy();
    const { tenantId, results } = await raceNewTenant(s, "Unbilled", 5);
    const db = s.mailbox!.ctx.db;
    expect(await db.selectFrom("tenant_limits").select("tenant_id").where("tenant_id", "=", tenantId).executeTakeFirst()).toBeUndefined();
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status === 403)).toHaveLength(4);
  });

  it("billing started without plans announces none: a new tenant is not limited again", async () => {
    await s.startBilling({ BILLING_PLANS: undefined as unknown as string });
    await defaultLimits(s, (r) => r !== undefined && r.plan_id === null, "no default limits in the mailbox");
    const { results } = await raceNewTenant(s, "Free", 3);
    expect(results.map((r) => r.status)).toEqual([201, 201, 201]);
  });
});
