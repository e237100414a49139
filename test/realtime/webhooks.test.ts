import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { CreatedWebhook, Webhook } from "@mam/contracts/webhooks-api.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { provisionTenant, Stack } from "../support/stack.ts";
import { Feed, feedEvent, Receiver } from "./webhook-kit.ts";

const MAX = 4;

/**
 * The webhook API through the gateway: who sees and manages what, what is refused, the
 * per-tenant cap, the secret shown once and in no event, workspace deletion, the read model
 * rebuilt from the stream. This realtime refuses private addresses (as in production).
 */
describe("webhooks: the API", () => {
  const s = new Stack({ logLevel: "warn", realtime: 1, realtimeEnv: { WEBHOOK_ALLOW_PRIVATE: "false", MAX_WEBHOOKS_PER_TENANT: String(MAX) } });
  const receiver = new Receiver();
  const feed = new Feed(s);
  let t: Awaited<ReturnType<typeof provisionTenant>>;
  let other: Awaited<ReturnType<typeof provisionTenant>>;
  let wkDefault: string;
  let sales: { id: string; key: string };
  let ak: string;

  const api = (method: string, path: string, key: string, body?: unknown) => s.api(method, path, { key, body });
  const create = (key: string, body: Record<string, unknown> = {}) =>
    api("POST", "/v1/webhooks", key, { url: "https://hooks.example.com/in", events: ["message.received"], ...body });
  const ids = async (key: string) => ((await api("GET", "/v1/webhooks", key)).body.webhooks as { id: string }[]).map((w) => w.id).sort();
  const removeAll = async (key: string) => {
    for (const id of await ids(key)) expect((await api("DELETE", `/v1/webhooks/${id}`, key)).status).toBe(200);
  };

  beforeAll(async () => {
    await receiver.start();
    await s.start();
    await feed.open();
    t = await provisionTenant(s, "Hooks");
    other = await provisionTenant(s, "Other");
    wkDefault = (await api("POST", `/v1/workspaces/${t.workspace.id}/keys`, t.key.key, {})).body.key;
    const ws = (await api("POST", "/v1/workspaces", t.key.key, { name: "Sales" })).body;
    sales = { id: ws.id, key: (await api("POST", `/v1/workspaces/${ws.id}/keys`, t.key.key, {})).body.key };
    ak = (await api("POST", "/v1/inboxes", t.key.key, { username: "hooked" })).body.apiKey;
  });
  afterAll(async () => {
    await feed.close();
    await s.stop();
    await receiver.stop();
  });

  it("shows the signing secret once, in the create answer, and in no event", async () => {
    const r = await create(t.key.key, { events: ["message.received", "message.bounced"] });
    expect(r.status).toBe(201);
    expect(CreatedWebhook.strict().parse(r.body)).toMatchObject({
      url: "https://hooks.example.com/in",
      events: ["message.received", "message.bounced"],
      isActive: true,
      workspaceId: null,
      status: "healthy",
      failingSince: null,
      lastDeliveryAt: null,
    });
    expect(r.body.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    const got = await api("GET", `/v1/webhooks/${r.body.id}`, t.key.key);
    expect(got.status).toBe(200);
    const { secret: _, ...shown } = r.body;
    expect(Webhook.strict().parse(got.body)).toEqual(shown);
    expect(JSON.stringify((await api("GET", "/v1/webhooks", t.key.key)).body)).not.toContain(r.body.secret);
    // The Webhook aggregate's events are in the stream for anyone entitled to read it: never the secret.
    const nc = await connect({ servers: s.iso.urls.NATS_URL });
    const jsm = await jetstreamManager(nc);
    const stream = eventsStreamName(s.iso.prefix);
    await waitFor(
      async () =>
        (await jsm.streams.getMessage(stream, { last_by_subj: `${s.iso.prefix}evt.realtime.${t.tenant.id}._.WebhookCreated` }).catch(() => null)) !== null,
      {
        what: "WebhookCreated in the stream",
      },
    );
    const m = await jsm.streams.getMessage(stream, { last_by_subj: `${s.iso.prefix}evt.realtime.${t.tenant.id}._.WebhookCreated` });
    const created = m!.json<{ type: string; data: Record<string, unknown> }>();
    expect(created.data).toEqual({ webhookId: r.body.id, url: r.body.url, events: r.body.events, isActive: true, workspaceId: null });
    expect(new TextDecoder().decode(m!.data)).not.toContain(r.body.secret);
    await nc.close();
    await removeAll(t.key.key);
  });

  it("files a tk_ key's webhook for the tenant and a wk_ key's in its workspace; each key sees and manages what it should, the rest is 404", async () => {
    const tenantWide = (await create(t.key.key)).body;
    const inDefault = (await create(wkDefault)).body;
    const inSales = (await create(sales.key)).body;
    expect([tenantWide.workspaceId, inDefault.workspaceId, inSales.workspaceId]).toEqual([null, t.workspace.id, sales.id]);

    expect(await ids(t.key.key)).toEqual([tenantWide.id, inDefault.id, inSales.id].sort());
    expect(await ids(wkDefault)).toEqual([inDefault.id]);
    expect(await ids(sales.key)).toEqual([inSales.id]);
    expect(await ids(other.key.key)).toEqual([]);

    const refusedTo = async (key: string, id: string) => {
      const answers = await Promise.all([
        api("GET", `/v1/webhooks/${id}`, key),
        api("PATCH", `/v1/webhooks/${id}`, key, { isActive: false }),
        api("GET", `/v1/webhooks/${id}/deliveries`, key),
        api("DELETE", `/v1/webhooks/${id}`, key),
      ]);
      return answers.map((a) => [a.status, a.body.code]);
    };
    const notFound = Array(4).fill([404, "NOT_FOUND"]);
    // A workspace key sees neither the tenant's webhook nor another workspace's; another tenant sees none.
    expect(await refusedTo(sales.key, tenantWide.id)).toEqual(notFound);
    expect(await refusedTo(sales.key, inDefault.id)).toEqual(notFound);
    expect(await refusedTo(wkDefault, inSales.id)).toEqual(notFound);
    expect(await refusedTo(other.key.key, inSales.id)).toEqual(notFound);
    expect(await refusedTo(other.key.key, "01900000-0000-7000-8000-000000000000")).toEqual(notFound);
    // Nothing changed.
    expect((await api("GET", `/v1/webhooks/${inSales.id}`, t.key.key)).body.isActive).toBe(true);

    // The tenant key manages a workspace's webhook; the workspace key its own.
    const patched = await api("PATCH", `/v1/webhooks/${inSales.id}`, t.key.key, { events: ["message.sent", "domain.verified"], isActive: false });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ id: inSales.id, events: ["message.sent", "domain.verified"], isActive: false, url: inSales.url });
    expect(Date.parse(patched.body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(inSales.updatedAt));
    expect((await api("GET", `/v1/webhooks/${inSales.id}`, sales.key)).body).toEqual(patched.body);
    const moved = await api("PATCH", `/v1/webhooks/${inDefault.id}`, wkDefault, { url: "https://other.example.net/x?y=1" });
    expect([moved.status, moved.body.url]).toEqual([200, "https://other.example.net/x?y=1"]);
    expect((await api("DELETE", `/v1/webhooks/${inDefault.id}`, wkDefault)).body).toEqual({ deleted: true, id: inDefault.id });
    expect((await api("GET", `/v1/webhooks/${inDefault.id}`, t.key.key)).status).toBe(404);
    expect((await api("DELETE", `/v1/webhooks/${inDefault.id}`, wkDefault)).status).toBe(404);
    await removeAll(t.key.key);
  });

  it("refuses inbox and operator keys (403)", async () => {
    for (const key of [ak, s.operatorKey]) {
      expect((await create(key)).body.code).toBe("FORBIDDEN");
      expect((await api("GET", "/v1/webhooks", key)).status).toBe(403);
    }
  });

  it("refuses a bad URL, a literal private address, an unknown or repeated event, no events, and unknown fields (400), changing nothing", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ url: "ftp://hooks.example.com/x" }, "url"],
      [{ url: "hooks.example.com/x" }, "url"],
      [{ url: "https://user:pass@hooks.example.com/x" }, "url"],
      [{ url: `https://hooks.example.com/${"x".repeat(2100)}` }, "url"],
      [{ url: "http://127.0.0.1:8080/hook" }, "url"],
      [{ url: "http://0x7f.1/hook" }, "url"],
      [{ url: "http://169.254.169.254/latest/meta-data" }, "url"],
      [{ url: "https://10.1.2.3/hook" }, "url"],
      [{ url: "http://[::1]:9000/" }, "url"],
      [{ url: "http://[::ffff:192.168.0.1]/" }, "url"],
      [{ events: ["message.exploded"] }, "events.0"],
      [{ events: [] }, "events"],
      [{ events: ["message.sent", "message.sent"] }, "events"],
      [{ isActive: "yes" }, "isActive"],
      [{ secret: "whsec_mine" }, "body"],
    ];
    for (const [body, path] of cases) {
      const r = await create(t.key.key, body);
      expect([r.status, r.body.code], JSON.stringify(body).slice(0, 100)).toEqual([400, "VALIDATION_ERROR"]);
      expect(r.body.fields.map((f: { path: string }) => f.path)).toContain(path);
    }
    expect(await ids(t.key.key)).toEqual([]);
    const hook = (await create(t.key.key)).body;
    for (const body of [{}, { url: "http://192.168.1.10/" }, { events: [] }, { url: "javascript:alert(1)" }]) {
      const r = await api("PATCH", `/v1/webhooks/${hook.id}`, t.key.key, body);
      expect([r.status, r.body.code], JSON.stringify(body)).toEqual([400, "VALIDATION_ERROR"]);
    }
    expect((await api("GET", `/v1/webhooks/${hook.id}`, t.key.key)).body.url).toBe(hook.url);
    expect((await api("GET", "/v1/webhooks/not-a-uuid", t.key.key)).status).toBe(400);
    await removeAll(t.key.key);
  });

  it(`holds a tenant to ${MAX} webhooks across its workspaces, even when creates race, with the limit in the refusal`, async () => {
    const racers = [t.key.key, wkDefault, sales.key];
    const answers = await Promise.all(Array.from({ length: 3 * MAX }, (_, i) => create(racers[i % racers.length]!)));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((x) => x === 201)).toHaveLength(MAX);
    const refusal = answers.find((a) => a.status === 403)!.body;
    expect(refusal).toEqual({ error: expect.stringContaining(`${MAX} webhooks`), code: "PLAN_LIMIT_REACHED", limit: "webhooks", usage: MAX, max: MAX });
    expect(statuses.filter((x) => x === 403)).toHaveLength(2 * MAX);
    expect(await ids(t.key.key)).toHaveLength(MAX);
    // Another tenant's count is its own; a deleted webhook frees its place.
    expect((await create(other.key.key)).status).toBe(201);
    const [first] = await ids(t.key.key);
    await api("DELETE", `/v1/webhooks/${first}`, t.key.key);
    expect((await create(sales.key)).status).toBe(201);
    expect((await create(sales.key)).status).toBe(403);
    await removeAll(t.key.key);
    await removeAll(other.key.key);
  });

  it("deletes a workspace's webhooks with the workspace, and keeps the tenant's", async () => {
    const ws = (await api("POST", "/v1/workspaces", t.key.key, { name: "Short-lived" })).body;
    const wk = (await api("POST", `/v1/workspaces/${ws.id}/keys`, t.key.key, {})).body.key;
    const doomed = (await create(wk)).body;
    const kept = (await create(t.key.key)).body;
    expect((await api("DELETE", `/v1/workspaces/${ws.id}`, t.key.key)).status).toBe(200);
    await waitFor(async () => (await api("GET", `/v1/webhooks/${doomed.id}`, t.key.key)).status === 404, {
      timeoutMs: 10_000,
      what: "the workspace's webhook gone",
    });
    expect(await ids(t.key.key)).toEqual([kept.id]);
    await removeAll(t.key.key);
  });

  it("refuses at delivery a host name that resolves to a private address, and logs the attempt", async () => {
    // "localhost" is a name, so it passes at create; it resolves to loopback when an attempt is made.
    const hook = (await create(t.key.key, { url: receiver.url("/by-name", "localhost") })).body;
    const e = feedEvent({ tenantId: t.tenant.id, workspaceId: t.workspace.id });
    await feed.publish(e);
    const log = async () => (await api("GET", `/v1/webhooks/${hook.id}/deliveries`, t.key.key)).body;
    await waitFor(async () => (await log()).deliveries.length > 0, { timeoutMs: 10_000, what: "the refused attempt in the log" });
    const [attempt] = (await log()).deliveries;
    expect(attempt).toMatchObject({ eventId: e.eventId, event: "message.received", attempt: 1, statusCode: null, success: false });
    // Not what it resolved to: the addresses of names inside the network are none of a tenant's business.
    expect(attempt.error).toBe("localhost resolves only to private or special-use addresses; not connected");
    expect(attempt.nextAttemptAt).not.toBeNull();
    expect(receiver.at("/by-name")).toEqual([]);
    await removeAll(t.key.key);
  });

  it("answers the same after its read model is dropped and rebuilt from the stream", async () => {
    const a = (await create(t.key.key, { events: ["message.sent"] })).body;
    const b = (await create(sales.key)).body;
    await api("PATCH", `/v1/webhooks/${a.id}`, t.key.key, { isActive: false, url: "https://hooks.example.com/moved" });
    const ws = (await api("POST", "/v1/workspaces", t.key.key, { name: "Gone" })).body;
    const wk = (await api("POST", `/v1/workspaces/${ws.id}/keys`, t.key.key, {})).body.key;
    const gone = (await create(wk)).body;
    await api("DELETE", `/v1/webhooks/${b.id}`, sales.key);
    await api("DELETE", `/v1/workspaces/${ws.id}`, t.key.key);
    await waitFor(async () => (await api("GET", `/v1/webhooks/${gone.id}`, t.key.key)).status === 404, {
      timeoutMs: 10_000,
      what: "the workspace's webhook gone",
    });
    const before = (await api("GET", "/v1/webhooks", t.key.key)).body;

    await s.realtimes.pop()!.destroy();
    const pgc = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await pgc.connect();
    const schema = s.iso.schema("realtime");
    await pgc.query(
      `delete from ${schema}.webhooks; delete from ${schema}.applied_events; delete from ${schema}.projection_checkpoint where projection = 'realtime-read-model'`,
    );
    await pgc.end();
    await s.startRealtime();

    expect((await api("GET", "/v1/webhooks", t.key.key)).body).toEqual(before);
    expect(before.webhooks.find((w: { id: string }) => w.id === a.id)).toMatchObject({ isActive: false, url: "https://hooks.example.com/moved" });
    await removeAll(t.key.key);
  });
});
