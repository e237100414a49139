import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import nodemailer from "nodemailer";
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

const PLANS = [
  { id: "free", name: "Free", stripePriceId: null, limits: { inboxes: 3, emailsPerMonth: 100, domains: 1 } },
  { id: "pro", name: "Pro", stripePriceId: "price_pro", limits: { inboxes: 10, emailsPerMonth: 1000, domains: 5 } },
];
const WEBHOOK_SECRET = "whsec_test_secret";
const DAY = 86_400;

interface Seen {
  path: string;
  form: URLSearchParams;
  idempotencyKey: string | undefined;
  auth: string | undefined;
}

/** A stand-in for the Stripe API calls billing makes: form-encoded requests, Stripe-shaped JSON answers. */
function stripeStandIn(): { server: Server; seen: Seen[]; start: () => Promise<string> } {
  const seen: Seen[] = [];
  let n = 0;
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      const form = new URLSearchParams(body);
      seen.push({ path: req.url ?? "", form, idempotencyKey: req.headers["idempotency-key"] as string | undefined, auth: req.headers.authorization });
      const reply = (status: number, json: object) => {
        res.writeHead(status, { "content-type": "application/json", "request-id": `req_${++n}` });
        res.end(JSON.stringify(json));
      };
      if (req.method === "POST" && req.url === "/v1/customers") {
        return reply(200, { id: "cus_standin", object: "customer", metadata: { tenantId: form.get("metadata[tenantId]") } });
      }
      if (req.method === "POST" && req.url === "/v1/checkout/sessions") {
        return reply(200, { id: `cs_${n}`, object: "checkout.session", mode: form.get("mode"), url: `https://checkout.standin.test/c/cs_${n}` });
      }
      if (req.method === "POST" && req.url === "/v1/billing_portal/sessions") {
        return reply(200, { id: `bps_${n}`, object: "billing_portal.session", customer: form.get("customer"), url: `https://portal.standin.test/p/bps_${n}` });
      }
      reply(404, { error: { type: "invalid_request_error", message: `Unrecognized request URL (${req.method}: ${req.url})` } });
    });
  });
  const start = () =>
    new Promise<string>((resolve) => server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
  return { server, seen, start };
}

const sdk = new Stripe("sk_test_signing_only");
let seq = 0;
/** A Stripe event as Stripe sends it. */
function event(type: string, created: number, object: object, id = `evt_${++seq}_${type}`) {
  return { id, object: "event", api_version: "2025-10-29.clover", created, livemode: false, type, data: { object } };
}

describe("Stripe: checkout, portal and a subscription's lifecycle driven by signed webhooks", () => {
  let s: Stack;
  let standIn: ReturnType<typeof stripeStandIn>;
  let tk: string;
  let tenantId: string;
  let inboxes: { id: string; email: string; apiKey: string }[] = [];
  const now = Math.floor(Date.now() / 1000);
  const subscription = (status: string, created: number) => ({
    id: "sub_1",
    object: "subscription",
    customer: "cus_standin",
    status,
    metadata: { tenantId },
    items: {
      object: "list",
      data: [
        {
          id: "si_1",
          object: "subscription_item",
          price: { id: "price_pro", object: "price" },
          current_period_start: created,
          current_period_end: created + 30 * DAY,
        },
      ],
    },
  });
  const invoice = (id: string) => ({ id, object: "invoice", customer: "cus_standin", subscription: "sub_1", metadata: {} });

  /** Posts a webhook as Stripe does: raw JSON with its Stripe-Signature header. */
  async function webhook(payload: string, signature?: string): Promise<{ status: number; body: any }> {
    const headers: Record<string, string> = { "content-type": "application/json; charset=utf-8" };
    if (signature !== undefined) headers["stripe-signature"] = signature;
    const r = await fetch(`http://127.0.0.1:${s.gateways[0]!.port}/v1/billing/stripe/webhook`, { method: "POST", headers, body: payload });
    return { status: r.status, body: await r.json() };
  }
  const signed = (e: object) => {
    const payload = JSON.stringify(e);
    return webhook(payload, sdk.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }));
  };
  const billingRow = () => s.billing!.ctx.db.selectFrom("tenant_billing").selectAll().where("tenant_id", "=", tenantId).executeTakeFirstOrThrow();
  const mailboxPlan = async () =>
    (await s.mailbox!.ctx.db.selectFrom("tenant_limits").select("plan_id").where("tenant_id", "=", tenantId).executeTakeFirst())?.plan_id;
  const mailboxPaused = async () =>
    (await s.mailbox!.ctx.db.selectFrom("tenant_pauses").select("paused").where("tenant_id", "=", tenantId).executeTakeFirst())?.paused ?? false;
  const send = (from: { id: string }, to: string) =>
    s.api("POST", `/v1/inboxes/${from.id}/send`, { key: tk, body: { to, subject: "hi", plainBody: "x", verified: true } });
  const wait = (cond: () => Promise<boolean>, what: string) => waitFor(cond, { timeoutMs: 20_000, intervalMs: 50, what });

  beforeAll(async () => {
    standIn = stripeStandIn();
    const base = await standIn.start();
    s = new Stack({
      logLevel: "warn",
      billing: true,
      smtp: true,
      billingEnv: {
        BILLING_PLANS: JSON.stringify(PLANS),
        BILLING_DEFAULT_PLAN: "free",
        STRIPE_SECRET_KEY: "sk_test_standin",
        STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
        STRIPE_API_BASE: base,
        BILLING_RETURN_URL: "https://app.example/billing",
      },
    });
    await s.start();
    const t = await provisionTenant(s, "Paying");
    tk = t.key.key;
    tenantId = t.tenant.id;
    await wait(async () => (await mailboxPlan()) === "free", "the free plan in the mailbox");
    const made = await Promise.all([1, 2, 3].map((i) => s.api("POST", "/v1/inboxes", { key: tk, body: { username: `payer-${i}` } })));
    inboxes = made.map((r) => r.body);
  }, 120_000);

  afterAll(async () => {
    await s?.stop();
    standIn?.server.close();
  });

  it("checkout and portal URLs come from Stripe; one customer per tenant, created with the tenant's idempotency key", async () => {
    const free = await s.api("POST", "/v1/billing/checkout", { key: tk, body: { plan: "free" } });
    expect(free.status).toBe(400);
    const checkout = await s.api("POST", "/v1/billing/checkout", { key: tk, body: { plan: "pro" } });
    expect(checkout.status).toBe(200);
    expect(checkout.body.url).toMatch(/^https:\/\/checkout\.standin\.test\/c\/cs_\d+$/);
    const portal = await s.api("POST", "/v1/billing/portal", { key: tk });
    expect(portal.status).toBe(200);
    expect(portal.body.url).toMatch(/^https:\/\/portal\.standin\.test\/p\/bps_\d+$/);

    const customers = standIn.seen.filter((r) => r.path === "/v1/customers");
    expect(customers).toHaveLength(1);
    expect(customers[0]!.idempotencyKey).toBe(`mam-customer-${tenantId}`);
    expect(customers[0]!.form.get("metadata[tenantId]")).toBe(tenantId);
    expect(customers[0]!.auth).toBe("Bearer sk_test_standin");
    const session = standIn.seen.find((r) => r.path === "/v1/checkout/sessions")!;
    expect(session.form.get("mode")).toBe("subscription");
    expect(session.form.get("customer")).toBe("cus_standin");
    expect(session.form.get("line_items[0][price]")).toBe("price_pro");
    expect(session.form.get("client_reference_id")).toBe(tenantId);
    expect(session.form.get("success_url")).toBe("https://app.example/billing?checkout=success");
    expect(standIn.seen.find((r) => r.path === "/v1/billing_portal/sessions")!.form.get("customer")).toBe("cus_standin");
    expect((await billingRow()).customer_id).toBe("cus_standin");
  });

  it("wk_ and ak_ keys are refused on every billing route", async () => {
    const workspaceId = (await s.api("GET", "/v1/workspaces", { key: tk })).body.workspaces[0].id as string;
    const wk = (await s.api("POST", `/v1/workspaces/${workspaceId}/keys`, { key: tk, body: {} })).body.key as string;
    for (const key of [wk, inboxes[0]!.apiKey]) {
      expect((await s.api("POST", "/v1/billing/checkout", { key, body: { plan: "pro" } })).status).toBe(403);
      expect((await s.api("POST", "/v1/billing/portal", { key })).status).toBe(403);
      expect((await s.api("GET", "/v1/billing", { key })).status).toBe(403);
    }
  });

  it("free → paid: checkout completed and the subscription created put the tenant on pro, and a 4th inbox is allowed", async () => {
    expect((await s.api("POST", "/v1/inboxes", { key: tk, body: { username: "payer-4" } })).status).toBe(403);
    const completed = event("checkout.session.completed", now - 30 * DAY, {
      id: "cs_1",
      object: "checkout.session",
      mode: "subscription",
      client_reference_id: tenantId,
      customer: "cus_standin",
      subscription: "sub_1",
      metadata: { tenantId },
    });
    expect(await signed(completed)).toEqual({ status: 200, body: { received: true } });
    expect((await signed(event("customer.subscription.created", now - 30 * DAY, subscription("active", now - 30 * DAY)))).status).toBe(200);
    await wait(async () => (await mailboxPlan()) === "pro", "the pro plan in the mailbox");
    const fourth = await s.api("POST", "/v1/inboxes", { key: tk, body: { username: "payer-4" } });
    expect(fourth.status).toBe(201);
    inboxes.push(fourth.body);
    const account = (await s.api("GET", "/v1/billing", { key: tk })).body;
    expect(account).toMatchObject({
      plan: { id: "pro", limits: PLANS[1]!.limits },
      status: "active",
      period: { start: new Date((now - 30 * DAY) * 1000).toISOString(), end: new Date(now * 1000).toISOString() },
    });
    expect(await billingRow()).toMatchObject({ subscription_id: "sub_1", customer_id: "cus_standin" });
    // Subscribed: a second Checkout (a second subscription, billed twice) is refused; the portal changes the plan.
    const again = await s.api("POST", "/v1/billing/checkout", { key: tk, body: { plan: "pro" } });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: "CONFLICT" });
  });

  it("payment failed: past due, still sending; once the grace period has passed: paused (sends 403 INBOX_PAUSED, reading and SMTP receiving go on)", async () => {
    expect((await signed(event("invoice.payment_failed", now - 2 * DAY, invoice("in_1")))).status).toBe(200);
    expect((await s.api("GET", "/v1/billing", { key: tk })).body.status).toBe("past_due");
    expect((await send(inboxes[0]!, inboxes[1]!.email)).status).toBe(200);

    // Failed two days ago: a grace of one day has passed; billing's check at its start pauses the tenant.
    await s.billing!.destroy();
    await s.startBilling({ BILLING_GRACE_DAYS: "1" });
    await wait(async () => (await billingRow()).status === "paused", "billing pausing the tenant");
    await wait(mailboxPaused, "the pause in the mailbox");
    expect((await s.api("GET", "/v1/billing", { key: tk })).body.status).toBe("paused");

    const refused = await send(inboxes[0]!, inboxes[1]!.email);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: "INBOX_PAUSED" });
    const read = await s.api("GET", `/v1/inboxes/${inboxes[1]!.id}/messages?limit=100`, { key: tk });
    expect(read.status).toBe(200);
    expect(read.body.messages.length).toBeGreaterThan(0);

    const smtp = nodemailer.createTransport({ host: "127.0.0.1", port: s.smtp!.port, secure: false, ignoreTLS: true });
    await smtp.sendMail({ from: "customer@example.com", to: inboxes[2]!.email, subject: "Still receiving", text: "hello" });
    await wait(async () => {
      const r = await s.api("GET", `/v1/inboxes/${inboxes[2]!.id}/messages?limit=100`, { key: tk });
      return r.body.messages.some((m: { subject: string }) => m.subject === "Still receiving");
    }, "the message received over SMTP while paused");
  });

  it("paid again: resumed, sends go out", async () => {
    expect((await signed(event("invoice.paid", now - DAY, invoice("in_2"), "evt_paid"))).status).toBe(200);
    await wait(async () => !(await mailboxPaused()), "the resume in the mailbox");
    expect((await s.api("GET", "/v1/billing", { key: tk })).body.status).toBe("active");
    expect((await send(inboxes[0]!, inboxes[1]!.email)).status).toBe(200);
  });

  it("a duplicate event id, an older event and forged or missing signatures change nothing", async () => {
    const before = await billingRow();
    // The same event id again (even claiming a newer time): already handled.
    expect((await signed(event("invoice.payment_failed", now - DAY + 60, invoice("in_2"), "evt_paid"))).status).toBe(200);
    // Out of order: a payment failure older than the payment applied last.
    expect((await signed(event("invoice.payment_failed", now - 20 * DAY, invoice("in_0")))).status).toBe(200);

    const failed = JSON.stringify(event("invoice.payment_failed", now, invoice("in_9")));
    const forged = await webhook(failed, new Stripe("sk_x").webhooks.generateTestHeaderString({ payload: failed, secret: "whsec_not_ours" }));
    expect(forged.status).toBe(400);
    expect(forged.body).toMatchObject({ code: "VALIDATION_ERROR" });
    expect((await webhook(failed)).status).toBe(400);
    const otherBody = JSON.stringify(event("invoice.payment_failed", now, invoice("in_8")));
    expect((await webhook(otherBody, sdk.webhooks.generateTestHeaderString({ payload: failed, secret: WEBHOOK_SECRET }))).status).toBe(400);
    // A signature older than Stripe's tolerance (a replayed request): refused.
    const stale = sdk.webhooks.generateTestHeaderString({ payload: failed, secret: WEBHOOK_SECRET, timestamp: Math.floor(Date.now() / 1000) - 3600 });
    expect((await webhook(failed, stale)).status).toBe(400);
    // An event type billing does not act on: acknowledged, nothing changed.
    expect(await signed(event("customer.updated", now, { id: "cus_standin", object: "customer", metadata: { tenantId } }))).toEqual({
      status: 200,
      body: { received: true },
    });
    // Beyond the body cap: 413 before anything reaches billing.
    const huge = JSON.stringify(event("invoice.payment_failed", now, { ...invoice("in_huge"), description: "x".repeat(300 * 1024) }));
    const tooLarge = await webhook(huge, sdk.webhooks.generateTestHeaderString({ payload: huge, secret: WEBHOOK_SECRET }));
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body).toMatchObject({ code: "PAYLOAD_TOO_LARGE" });

    expect(await billingRow()).toEqual(before);
    expect((await s.api("GET", "/v1/billing", { key: tk })).body.status).toBe("active");
    expect(await mailboxPaused()).toBe(false);
  });

  it("cancelled: back on the free plan, its limits back (a 5th inbox refused), status canceled", async () => {
    expect((await signed(event("customer.subscription.deleted", now, subscription("canceled", now - 30 * DAY)))).status).toBe(200);
    await wait(async () => (await mailboxPlan()) === "free", "the free plan back in the mailbox");
    const fifth = await s.api("POST", "/v1/inboxes", { key: tk, body: { username: "payer-5" } });
    expect(fifth.status).toBe(403);
    expect(fifth.body).toMatchObject({ code: "PLAN_LIMIT_REACHED", limit: "inboxes", max: 3 });
    const account = (await s.api("GET", "/v1/billing", { key: tk })).body;
    expect(account).toMatchObject({ plan: { id: "free" }, status: "canceled" });
    expect((await send(inboxes[0]!, inboxes[1]!.email)).status).toBe(200);
    // No subscription any more: Checkout again.
    expect((await s.api("POST", "/v1/billing/checkout", { key: tk, body: { plan: "pro" } })).status).toBe(200);
  });

  it("an event's client_reference_id or metadata never decides the tenant: another customer naming it, or its customer naming another tenant, changes nothing", async () => {
    const before = await billingRow();
    const later = now + 60;
    // A Payment Link (or any checkout) paid by someone else, naming this tenant.
    const foreign = event("checkout.session.completed", later, {
      id: "cs_foreign",
      object: "checkout.session",
      mode: "subscription",
      client_reference_id: tenantId,
      customer: "cus_someone_else",
      subscription: "sub_foreign",
      metadata: { tenantId },
    });
    expect(await signed(foreign)).toEqual({ status: 200, body: { received: true } });
    const failed = event("invoice.payment_failed", later, {
      id: "in_foreign",
      object: "invoice",
      customer: "cus_someone_else",
      subscription: "sub_foreign",
      metadata: { tenantId },
    });
    expect((await signed(failed)).status).toBe(200);
    const ended = { ...subscription("canceled", later), id: "sub_foreign", customer: "cus_someone_else" };
    expect((await signed(event("customer.subscription.deleted", later, ended))).status).toBe(200);
    // This tenant's customer, naming another tenant.
    const other = (await provisionTenant(s, "Bystander")).tenant.id;
    const misnamed = event("checkout.session.completed", later, {
      id: "cs_misnamed",
      object: "checkout.session",
      mode: "subscription",
      client_reference_id: other,
      customer: "cus_standin",
      subscription: "sub_other",
      metadata: { tenantId: other },
    });
    expect(await signed(misnamed)).toEqual({ status: 200, body: { received: true } });
    expect(await billingRow()).toEqual(before);
    expect(await s.billing!.ctx.db.selectFrom("tenant_billing").selectAll().where("tenant_id", "=", other).executeTakeFirst()).toBeUndefined();
  });
});

describe("Stripe not configured", () => {
  let s: Stack;

  beforeAll(async () => {
    s = new Stack({ logLevel: "warn", billing: true, billingEnv: { BILLING_PLANS: JSON.stringify(PLANS), BILLING_DEFAULT_PLAN: "free" } });
    await s.start();
  }, 120_000);

  afterAll(() => s?.stop());

  it("checkout and portal answer 404 billing not configured (asking again will not help); the webhook 503 (Stripe retries until the secret is set)", async () => {
    const t = await provisionTenant(s, "Unbilled");
    for (const r of [
      await s.api("POST", "/v1/billing/checkout", { key: t.key.key, body: { plan: "pro" } }),
      await s.api("POST", "/v1/billing/portal", { key: t.key.key }),
    ]) {
      expect(r.status).toBe(404);
      expect(r.body).toMatchObject({ code: "NOT_FOUND", error: expect.stringMatching(/not configured/) });
    }
    const payload = JSON.stringify(event("invoice.paid", Math.floor(Date.now() / 1000), { id: "in_1", object: "invoice", customer: "cus_1" }));
    const r = await fetch(`http://127.0.0.1:${s.gateways[0]!.port}/v1/billing/stripe/webhook`, {
      method: "POST",
      headers: { "content-type": "application/json", "stripe-signature": sdk.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }) },
      body: payload,
    });
    expect(r.status).toBe(503);
  });
});
