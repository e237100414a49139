import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

const PLANS = [
  { id: "free", name: "Free", stripePriceId: null, limits: { inboxes: 3, emailsPerMonth: 2, domains: 1 } },
  { id: "pro", name: "Pro", stripePriceId: "price_pro", limits: { inboxes: null, emailsPerMonth: null, domains: null } },
];

type Inbox = { id: string; email: string; apiKey: string };

/** Waits until the mailbox holds the tenant's limits (billing's TenantPlanChanged reached it). */
async function limitsKnown(s: Stack, tenantId: string): Promise<void> {
  const db = s.mailbox!.ctx.db;
  await waitFor(async () => !!(await db.selectFrom("tenant_limits").select("tenant_id").where("tenant_id", "=", tenantId).executeTakeFirst()), {
    timeoutMs: 20_000,
    intervalMs: 50,
    what: "the tenant's plan limits in the mailbox",
  });
}

const refusal = (limit: string, usage: number, max: number) => ({ code: "PLAN_LIMIT_REACHED", limit, usage, max, error: expect.any(String) });

/**
 * Plans and limits: a new tenant is put on the default plan, the mailbox refuses inbox
 * creates, domain adds and sends beyond it (race-free across workspaces, two mailbox
 * replicas and two gateways), nothing changes when it refuses, other tenants are not
 * touched; GET /v1/billing for each key kind.
 */
describe("plan limits", () => {
  let s: Stack;
  let tk: string;
  let tenantId: string;
  let workspaces: string[];
  let raced: Inbox[] = [];

  beforeAll(async () => {
    s = new Stack({
      logLevel: "warn",
      billing: true,
      mailboxes: 2,
      gateways: 2,
      billingEnv: { BILLING_PLANS: JSON.stringify(PLANS), BILLING_DEFAULT_PLAN: "free" },
    });
    await s.start();
    const t = await provisionTenant(s, "Limited");
    tk = t.key.key;
    tenantId = t.tenant.id;
    const more = await Promise.all(["Two", "Three"].map((name) => s.api("POST", "/v1/workspaces", { key: tk, body: { name } })));
    workspaces = [t.workspace.id, ...more.map((r) => r.body.id as string)];
    await limitsKnown(s, tenantId);
  }, 120_000);

  afterAll(() => s?.stop());

  it("50 parallel inbox creates over 3 workspaces, 2 gateways and 2 mailbox replicas: exactly the plan's 3 succeed", async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        s.client(i % 2)("POST", "/v1/inboxes", { key: tk, body: { username: `race-${i}`, workspaceId: workspaces[i % 3] } }),
      ),
    );
    const created = results.filter((r) => r.status === 201);
    const refused = results.filter((r) => r.status === 403);
    expect(created).toHaveLength(3);
    expect(refused).toHaveLength(47);
    for (const r of refused) expect(r.body).toEqual(refusal("inboxes", 3, 3));
    raced = created.map((r) => r.body as Inbox);
    const listed = await s.api("GET", "/v1/inboxes?limit=100", { key: tk });
    expect(listed.body.inboxes.map((i: { id: string }) => i.id).sort()).toEqual(created.map((r) => r.body.id).sort());
  });

  it("a domain beyond the plan is refused and the domains are unchanged", async () => {
    expect((await s.api("POST", "/v1/domains", { key: tk, body: { domain: "first-limited.example" } })).status).toBe(201);
    const before = (await s.api("GET", "/v1/domains", { key: tk })).body.domains;
    const second = await s.api("POST", "/v1/domains", { key: tk, body: { domain: "second-limited.example", workspaceId: workspaces[1] } });
    expect(second.status).toBe(403);
    expect(second.body).toEqual(refusal("domains", 1, 1));
    expect((await s.api("GET", "/v1/domains", { key: tk })).body.domains).toEqual(before);
  });

  it("sends beyond the month's emails are refused (a send, a draft send), one message counting once whatever its recipients", async () => {
    const [a, b, c] = raced;
    const send = (from: Inbox, to: string | string[], via = 0) =>
      s.client(via)("POST", `/v1/inboxes/${from.id}/send`, { key: tk, body: { to, subject: "hi", plainBody: "x", verified: true } });
    expect((await send(a!, [b!.email, c!.email])).status).toBe(200);
    expect((await send(b!, a!.email, 1)).status).toBe(200);
    // What c sent: its outbound mail only (the message a sent reaches c as a local copy whenever it is filed).
    const sentBy = async () => (await s.api("GET", `/v1/inboxes/${c!.id}/messages?limit=100&direction=outbound`, { key: tk })).body.messages.length;
    const sentBefore = await sentBy();

    const third = await send(c!, a!.email);
    expect(third.status).toBe(403);
    expect(third.body).toEqual(refusal("emailsPerMonth", 2, 2));

    const draft = await s.api("POST", `/v1/inboxes/${c!.id}/drafts`, { key: tk, body: { to: a!.email, subject: "later", plainBody: "y" } });
    expect(draft.status).toBe(201);
    const sentDraft = await s.api("POST", `/v1/inboxes/${c!.id}/drafts/${draft.body.id}/send`, { key: tk });
    expect(sentDraft.status).toBe(403);
    expect(sentDraft.body).toEqual(refusal("emailsPerMonth", 2, 2));
    // Nothing changed: the draft is still there, and no message left c.
    expect((await s.api("GET", `/v1/inboxes/${c!.id}/drafts/${draft.body.id}`, { key: tk })).status).toBe(200);
    expect(await sentBy()).toBe(sentBefore);
  });

  it("another tenant on the same plan is not touched by this tenant's usage", async () => {
    const other = await provisionTenant(s, "Neighbour");
    await limitsKnown(s, other.tenant.id);
    const made = await Promise.all([1, 2, 3].map((i) => s.api("POST", "/v1/inboxes", { key: other.key.key, body: { username: `neighbour-${i}` } })));
    expect(made.map((r) => r.status)).toEqual([201, 201, 201]);
    expect((await s.api("POST", "/v1/domains", { key: other.key.key, body: { domain: "neighbour.example" } })).status).toBe(201);
    const sent = await s.api("POST", `/v1/inboxes/${made[0]!.body.id}/send`, {
      key: other.key.key,
      body: { to: made[1]!.body.email, subject: "hi", plainBody: "x", verified: true },
    });
    expect(sent.status).toBe(200);
    const fourth = await s.api("POST", "/v1/inboxes", { key: other.key.key, body: { username: "neighbour-4" } });
    expect(fourth.body).toEqual(refusal("inboxes", 3, 3));
  });

  it("GET /v1/billing: tk_ sees the plan and the month's usage; wk_, ak_ and sa_ are refused", async () => {
    await waitFor(
      async () => {
        const r = await s.api("GET", "/v1/billing", { key: tk });
        return r.status === 200 && r.body.usage.inboxes === 3 && r.body.usage.domains === 1 && r.body.usage.emailsPerMonth === 2;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: "billing's usage counters" },
    );
    const r = await s.api("GET", "/v1/billing", { key: tk });
    const now = new Date();
    expect(r.body).toEqual({
      plan: { id: "free", name: "Free", limits: { inboxes: 3, emailsPerMonth: 2, domains: 1 } },
      status: "active",
      usage: { inboxes: 3, domains: 1, emailsPerMonth: 2 },
      period: {
        start: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString(),
        end: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString(),
      },
    });
    const wk = (await s.api("POST", `/v1/workspaces/${workspaces[0]}/keys`, { key: tk, body: {} })).body.key as string;
    for (const key of [wk, raced[0]!.apiKey, s.operatorKey]) {
      const refused = await s.api("GET", "/v1/billing", { key });
      expect(refused.status).toBe(403);
    }
  });

  it("the operator changing a plan's limits: at billing's start its tenants are told, and the mailbox enforces the new ones", async () => {
    await s.billing!.destroy();
    const roomier = PLANS.map((p) => (p.id === "free" ? { ...p, limits: { ...p.limits, inboxes: 4 } } : p));
    await s.startBilling({ BILLING_PLANS: JSON.stringify(roomier) });
    const db = s.mailbox!.ctx.db;
    await waitFor(async () => (await db.selectFrom("tenant_limits").select("inboxes").where("tenant_id", "=", tenantId).executeTakeFirst())?.inboxes === 4, {
      timeoutMs: 20_000,
      intervalMs: 50,
      what: "the new limits in the mailbox",
    });
    expect((await s.api("POST", "/v1/inboxes", { key: tk, body: { username: "roomier-1" } })).status).toBe(201);
    const over = await s.api("POST", "/v1/inboxes", { key: tk, body: { username: "roomier-2" } });
    expect(over.body).toEqual(refusal("inboxes", 4, 4));
    expect((await s.api("GET", "/v1/billing", { key: tk })).body.plan).toEqual({
      id: "free",
      name: "Free",
      limits: { inboxes: 4, emailsPerMonth: 2, domains: 1 },
    });
  });
});

describe("no BILLING_PLANS", () => {
  let s: Stack;

  beforeAll(async () => {
    s = new Stack({ logLevel: "warn", billing: true });
    await s.start();
  }, 120_000);

  afterAll(() => s?.stop());

  it("nothing is limited and GET /v1/billing shows no plan", async () => {
    const t = await provisionTenant(s, "Unlimited");
    const made = await Promise.all([1, 2, 3, 4, 5].map((i) => s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: `free-${i}` } })));
    expect(made.map((r) => r.status)).toEqual([201, 201, 201, 201, 201]);
    const r = await s.api("GET", "/v1/billing", { key: t.key.key });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ plan: null, status: "active" });
    expect(await s.mailbox!.ctx.db.selectFrom("tenant_limits").selectAll().execute()).toEqual([]);
  });
});
