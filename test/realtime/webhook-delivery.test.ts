import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toWebhookPayload, WebhookHeaders } from "@mam/contracts/webhook-payload.ts";
import { pruneWebhookLog } from "@mam/realtime/webhooks/sweep.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { provisionTenant, Stack } from "../support/stack.ts";
import { Feed, feedEvent, RealtimeTables, Receiver, verifies } from "./webhook-kit.ts";

/** Short retries, a short window and a short timeout, so that hours of retrying take seconds. */
const FAST = {
  WEBHOOK_RETRY_BASE_MS: "100",
  WEBHOOK_RETRY_MAX_DELAY_MS: "300",
  WEBHOOK_RETRY_WINDOW_S: "2",
  WEBHOOK_TIMEOUT_MS: "1000",
  WEBHOOK_POLL_MS: "100",
  WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT: "2",
};

type Attempt = {
  eventId: string;
  attempt: number;
  attemptedAt: string;
  statusCode: number | null;
  success: boolean;
  error: string | null;
  nextAttemptAt: string | null;
};

/**
 * Webhook deliveries, from feed entries (published as realtime's renderer publishes them) to a
 * receiver on loopback that checks every signature: retries, giving up, isolation of a slow
 * endpoint, restarts, and what each webhook is sent. Two realtime replicas share the work.
 */
describe("webhooks: deliveries", () => {
  const s = new Stack({ logLevel: "warn", mailbox: false, realtime: 2, realtimeEnv: FAST });
  const receiver = new Receiver();
  const feed = new Feed(s);
  const tables = new RealtimeTables(s);
  let t: Awaited<ReturnType<typeof provisionTenant>>;
  let other: Awaited<ReturnType<typeof provisionTenant>>;
  let sales: { id: string; key: string };

  const api = (method: string, path: string, key: string, body?: unknown) => s.api(method, path, { key, body });
  let paths = 0;
  /** A webhook on a path of its own; `secret` is what its receiver checks with. */
  const hook = async (key: string, body: Record<string, unknown> = {}) => {
    const path = `/hook-${++paths}`;
    const r = await api("POST", "/v1/webhooks", key, { url: receiver.url(path), events: ["message.received"], ...body });
    expect(r.status).toBe(201);
    return { id: r.body.id as string, secret: r.body.secret as string, path };
  };
  const log = async (id: string, query = "") =>
    (await api("GET", `/v1/webhooks/${id}/deliveries${query}`, t.key.key)).body as { deliveries: Attempt[]; pagination: Record<string, number> };
  const event = (o: Partial<Parameters<typeof feedEvent>[0]> = {}) => feedEvent({ tenantId: t.tenant.id, workspaceId: t.workspace.id, ...o });
  const arrived = (path: string, n: number, what = `${n} requests at ${path}`) => waitFor(() => receiver.at(path).length >= n, { timeoutMs: 15_000, what });
  /** Every delivery of a webhook has ended (delivered, given up or canceled): no attempt is still to come. */
  const settled = (id: string) =>
    waitFor(async () => (await tables.queueOf(id)).every((q) => q.state !== "pending"), { timeoutMs: 15_000, what: "the webhook's queue settled" });
  /** Replaces every realtime replica with `n` new ones of these settings. */
  const replaceReplicas = async (n: number, env: Record<string, string> = {}) => {
    for (const r of s.realtimes.splice(0)) await r.destroy();
    for (let i = 0; i < n; i++) await s.startRealtime(env);
  };

  beforeAll(async () => {
    await receiver.start();
    await s.start();
    await feed.open();
    await tables.open();
    t = await provisionTenant(s, "Deliveries");
    other = await provisionTenant(s, "Other");
    const ws = (await api("POST", "/v1/workspaces", t.key.key, { name: "Sales" })).body;
    sales = { id: ws.id, key: (await api("POST", `/v1/workspaces/${ws.id}/keys`, t.key.key, {})).body.key };
  });
  afterAll(async () => {
    await tables.close();
    await feed.close();
    await s.stop();
    await receiver.stop();
  });

  it("POSTs the event as signed JSON: both signatures verify over the raw body with the secret, and with no other", async () => {
    const h = await hook(t.key.key);
    const e = event({ subject: "signed" });
    await feed.publish(e);
    await arrived(h.path, 1);
    const [r] = receiver.at(h.path);
    expect(verifies(h.secret, r!)).toBe(true);
    const other = `${h.secret.slice(0, -1)}${h.secret.endsWith("A") ? "B" : "A"}`;
    expect(verifies(other, r!)).toBe(false);
    expect(verifies(h.secret, { ...r!, raw: Buffer.concat([r!.raw, Buffer.from(" ")]) })).toBe(false);
    expect(JSON.parse(r!.raw.toString("utf8"))).toEqual(toWebhookPayload(e));
    expect(r!.headers).toMatchObject({
      "content-type": "application/json",
      [WebhookHeaders.eventId]: e.eventId,
      [WebhookHeaders.event]: "message.received",
      [WebhookHeaders.attempt]: "1",
      "user-agent": expect.stringMatching(/webhooks/),
    });
    expect(Math.abs(Number(r!.headers[WebhookHeaders.timestamp]) - Date.now() / 1000)).toBeLessThan(60);
    await waitFor(async () => (await log(h.id)).deliveries.length === 1, { what: "the attempt logged" });
    expect((await log(h.id)).deliveries[0]).toMatchObject({ eventId: e.eventId, attempt: 1, statusCode: 200, success: true, error: null, nextAttemptAt: null });
    const shown = (await api("GET", `/v1/webhooks/${h.id}`, t.key.key)).body;
    expect([shown.status, shown.lastDeliveryAt !== null]).toEqual(["healthy", true]);
  });

  it("sends each webhook only what it is for: its tenant, its workspace, its event types, while active; each event once", async () => {
    const tenantWide = await hook(t.key.key, { events: ["message.received", "message.sent"] });
    const inSales = await hook(sales.key);
    const sentOnly = await hook(t.key.key, { events: ["message.sent"] });
    const paused = await hook(t.key.key, { isActive: false });
    const strangers = await hook(other.key.key);
    const inDefault = event({ subject: "to default" });
    const toSales = event({ workspaceId: sales.id, subject: "to sales" });
    const sent = event({ type: "message.sent", subject: "sent" });
    await Promise.all([inDefault, toSales, sent].map((e) => feed.publish(e)));
    // The same event rendered again after the stream's duplicate window: another entry, the same event id.
    await feed.publish(toSales, `${toSales.eventId}-again`);
    await feed.intakeCaughtUp();
    await arrived(tenantWide.path, 3);
    await arrived(inSales.path, 1);
    await arrived(sentOnly.path, 1);
    const subjects = (path: string) =>
      receiver
        .at(path)
        .map((r) => JSON.parse(r.raw.toString("utf8")).subject as string)
        .sort();
    expect(subjects(tenantWide.path)).toEqual(["sent", "to default", "to sales"]);
    expect(subjects(inSales.path)).toEqual(["to sales"]);
    expect(subjects(sentOnly.path)).toEqual(["sent"]);
    // Every entry was taken in above: a webhook with nothing queued gets nothing.
    expect(await tables.queueOf(paused.id)).toEqual([]);
    expect(await tables.queueOf(strangers.id)).toEqual([]);
    expect((await tables.queueOf(inSales.id)).map((q) => q.event_id)).toEqual([toSales.eventId]);
    expect((await tables.queueOf(tenantWide.id)).map((q) => q.event_id).sort()).toEqual([inDefault.eventId, toSales.eventId, sent.eventId].sort());
    await settled(tenantWide.id);
    expect(receiver.at(tenantWide.path)).toHaveLength(3);
    for (const h of [tenantWide, inSales, sentOnly]) for (const r of receiver.at(h.path)) expect(verifies(h.secret, r)).toBe(true);
    // Paused, then active again: only what happens from then on.
    await api("PATCH", `/v1/webhooks/${paused.id}`, t.key.key, { isActive: true });
    const later = event({ subject: "after resume" });
    await feed.publish(later);
    await arrived(paused.path, 1);
    expect(subjects(paused.path)).toEqual(["after resume"]);
  });

  it("retries a receiver answering 500 twice, then 200: three attempts of one event, logged newest first", async () => {
    const h = await hook(t.key.key);
    receiver.script(h.path, 500, 500);
    const e = event({ subject: "third time" });
    await feed.publish(e);
    await arrived(h.path, 3);
    const got = receiver.at(h.path);
    expect(got.map((r) => r.headers[WebhookHeaders.attempt])).toEqual(["1", "2", "3"]);
    expect(new Set(got.map((r) => r.headers[WebhookHeaders.eventId]))).toEqual(new Set([e.eventId]));
    expect(new Set(got.map((r) => r.raw.toString("base64"))).size).toBe(1);
    for (const r of got) expect(verifies(h.secret, r)).toBe(true);
    await waitFor(async () => (await log(h.id)).deliveries.length === 3, { what: "three attempts logged" });
    const { deliveries, pagination } = await log(h.id);
    expect(deliveries.map((d) => [d.attempt, d.statusCode, d.success])).toEqual([
      [3, 200, true],
      [2, 500, false],
      [1, 500, false],
    ]);
    expect(deliveries[0]!.nextAttemptAt).toBeNull();
    expect(deliveries[1]!.nextAttemptAt).not.toBeNull();
    expect(deliveries[2]!.error).toMatch(/^HTTP 500: refused with 500/);
    expect(pagination).toEqual({ total: 3, limit: 50, offset: 0, nextCursor: null });
    const page = await log(h.id, "?limit=1&offset=1");
    expect([page.deliveries.map((d) => d.attempt), page.pagination]).toEqual([[2], { total: 3, limit: 1, offset: 1, nextCursor: expect.any(String) }]);
    expect((await api("GET", `/v1/webhooks/${h.id}`, t.key.key)).body.status).toBe("healthy");
  });

  it("gives up after the retry window and marks the webhook failing; a later success makes it healthy again", async () => {
    const h = await hook(t.key.key);
    receiver.mode(h.path, 503);
    await feed.publish(event({ subject: "never" }));
    await waitFor(async () => (await api("GET", `/v1/webhooks/${h.id}`, t.key.key)).body.status === "failing", {
      timeoutMs: 15_000,
      what: "the webhook failing",
    });
    const failing = (await api("GET", `/v1/webhooks/${h.id}`, t.key.key)).body;
    expect(failing.failingSince).not.toBeNull();
    const { deliveries } = await log(h.id);
    expect(deliveries.length).toBeGreaterThan(2);
    expect(deliveries.every((d) => d.statusCode === 503 && !d.success)).toBe(true);
    // The last try was made at the window's end, and nothing follows it.
    expect(deliveries[0]!.nextAttemptAt).toBeNull();
    expect(Date.parse(deliveries[0]!.attemptedAt) - Date.parse(deliveries.at(-1)!.attemptedAt)).toBeGreaterThanOrEqual(2_000);
    expect((await tables.queueOf(h.id)).map((q) => q.state)).toEqual(["failed"]);

    receiver.mode(h.path, 200);
    await feed.publish(event({ subject: "better" }));
    await waitFor(async () => (await api("GET", `/v1/webhooks/${h.id}`, t.key.key)).body.status === "healthy", { timeoutMs: 15_000, what: "healthy again" });
    expect((await api("GET", `/v1/webhooks/${h.id}`, t.key.key)).body.failingSince).toBeNull();
  });

  it("gives each event to a webhook once, with two replicas taking the feed", async () => {
    const h = await hook(t.key.key);
    const events = Array.from({ length: 20 }, (_, i) => event({ subject: `once ${i}` }));
    await Promise.all(events.map((e) => feed.publish(e)));
    await arrived(h.path, 20);
    await settled(h.id);
    const got = receiver.at(h.path).map((r) => ({ id: String(r.headers[WebhookHeaders.eventId]), attempt: Number(r.headers[WebhookHeaders.attempt]) }));
    expect([...new Set(got.map((g) => g.id))].sort()).toEqual(events.map((e) => e.eventId).sort());
    // No attempt made twice: two replicas claiming one row would both send its attempt 1.
    const attempts = got.map((g) => `${g.id} #${g.attempt}`);
    expect(attempts.filter((a, i) => attempts.indexOf(a) !== i)).toEqual([]);
    // An event comes again only after an attempt logged as failed: its answer lost, or later than
    // WEBHOOK_TIMEOUT_MS (1 s here, on a busy machine). That is at-least-once delivery, not a double claim.
    const logged = (await log(h.id, "?limit=100")).deliveries;
    const retried = got.filter((g) => g.attempt > 1).map((g) => logged.find((d) => d.eventId === g.id && d.attempt === g.attempt - 1)?.success);
    expect(retried.filter((success) => success !== false)).toEqual([]);
    expect(logged.filter((d) => d.success)).toHaveLength(20);
  });

  it("times out an endpoint that does not answer, logs it, and tries again", async () => {
    const h = await hook(t.key.key);
    receiver.mode(h.path, "hang");
    await feed.publish(event({ subject: "into the void" }));
    await waitFor(async () => (await log(h.id)).deliveries.length > 0, { timeoutMs: 10_000, what: "a timed-out attempt logged" });
    expect((await log(h.id)).deliveries.at(-1)).toMatchObject({ attempt: 1, statusCode: null, success: false, error: "timed out after 1000 ms" });
    await arrived(h.path, 2, "a second attempt");
    await api("DELETE", `/v1/webhooks/${h.id}`, t.key.key);
  });

  it("keeps a slow endpoint to its own slots: another webhook's deliveries go through while all of its requests hang", async () => {
    // One replica, a long timeout, and room for 4 requests in all, 2 per endpoint: the slow
    // endpoint's 6 deliveries would fill every slot if it were not held to its own.
    await replaceReplicas(1, { WEBHOOK_TIMEOUT_MS: "60000", WEBHOOK_MAX_IN_FLIGHT: "4", WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT: "2" });
    const slow = await hook(t.key.key, { events: ["message.bounced"] });
    const fast = await hook(t.key.key, { events: ["message.received"] });
    receiver.mode(slow.path, "hang");
    for (let i = 0; i < 6; i++) await feed.publish(event({ type: "message.bounced", subject: `slow ${i}` }));
    await arrived(slow.path, 2);
    const fastOnes = Array.from({ length: 5 }, (_, i) => event({ subject: `fast ${i}` }));
    for (const e of fastOnes) await feed.publish(e);
    // Within the bound, while every request to the slow one still hangs (none would time out for a minute).
    await arrived(fast.path, 5);
    expect([receiver.openAt(slow.path), receiver.mostOpen.get(slow.path), receiver.at(slow.path).length]).toEqual([2, 2, 2]);
    // Once it answers, what waited goes through, two at a time.
    receiver.mode(slow.path, 200);
    receiver.release(slow.path, 200);
    await arrived(slow.path, 6);
    await settled(slow.id);
    expect((await tables.queueOf(slow.id)).map((q) => q.state)).toEqual(Array(6).fill("delivered"));
    expect(receiver.mostOpen.get(slow.path)).toBe(2);
    await replaceReplicas(2, FAST);
  });

  it("keeps a tenant's many slow endpoints to the tenant's share: another tenant's deliveries go through while all of them hang", async () => {
    // Room for 4 requests in all, 2 per endpoint, 2 per tenant: two hanging webhooks of one tenant would take every slot without the last.
    await replaceReplicas(1, {
      WEBHOOK_TIMEOUT_MS: "60000",
      WEBHOOK_MAX_IN_FLIGHT: "4",
      WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT: "2",
      WEBHOOK_MAX_IN_FLIGHT_PER_TENANT: "2",
    });
    const slow = [await hook(other.key.key), await hook(other.key.key)];
    for (const h of slow) receiver.mode(h.path, "hang");
    for (let i = 0; i < 3; i++) await feed.publish(feedEvent({ tenantId: other.tenant.id, workspaceId: other.workspace.id, subject: `slow ${i}` }));
    await waitFor(() => slow.reduce((n, h) => n + receiver.openAt(h.path), 0) >= 2, { what: "two requests of the slow tenant open" });
    const fast = await hook(t.key.key);
    for (let i = 0; i < 5; i++) await feed.publish(event({ subject: `fast ${i}` }));
    await arrived(fast.path, 5);
    expect(slow.reduce((n, h) => n + receiver.openAt(h.path), 0)).toBe(2);
    for (const h of slow) {
      receiver.mode(h.path, 200);
      receiver.release(h.path, 200);
    }
    for (const h of slow) await settled(h.id);
    expect(slow.map((h) => receiver.at(h.path).length)).toEqual([3, 3]);
    await replaceReplicas(2, FAST);
  });

  it("sends what waits its turn where the webhook points when its turn comes: nowhere once paused, to the new URL once moved", async () => {
    // One request at a time per endpoint, none timing out: the rest of each webhook's events wait in this replica's line.
    await replaceReplicas(1, { ...FAST, WEBHOOK_TIMEOUT_MS: "60000", WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT: "1" });
    const paused = await hook(t.key.key, { events: ["message.bounced"] });
    const moved = await hook(t.key.key, { events: ["message.sent"] });
    const newPath = `/hook-${++paths}`;
    for (const h of [paused, moved]) receiver.mode(h.path, "hang");
    for (let i = 0; i < 3; i++) {
      await feed.publish(event({ type: "message.bounced", subject: `paused ${i}` }));
      await feed.publish(event({ type: "message.sent", subject: `moved ${i}` }));
    }
    await arrived(paused.path, 1);
    await arrived(moved.path, 1);
    await feed.intakeCaughtUp();
    expect((await api("PATCH", `/v1/webhooks/${paused.id}`, t.key.key, { isActive: false })).status).toBe(200);
    expect((await api("PATCH", `/v1/webhooks/${moved.id}`, t.key.key, { url: receiver.url(newPath) })).status).toBe(200);
    for (const h of [paused, moved]) {
      receiver.mode(h.path, 200);
      receiver.release(h.path, 200);
    }
    await settled(paused.id);
    await settled(moved.id);
    expect((await tables.queueOf(paused.id)).map((q) => q.state)).toEqual(["delivered", "canceled", "canceled"]);
    expect(receiver.at(paused.path)).toHaveLength(1);
    expect([receiver.at(moved.path).length, receiver.at(newPath).length]).toEqual([1, 2]);
    for (const r of receiver.at(newPath)) expect(verifies(moved.secret, r)).toBe(true);
    await replaceReplicas(2, FAST);
  });

  it("drops a deleted webhook's pending deliveries", async () => {
    const h = await hook(t.key.key);
    receiver.mode(h.path, 500);
    await feed.publish(event({ subject: "doomed" }));
    await arrived(h.path, 1);
    expect((await api("DELETE", `/v1/webhooks/${h.id}`, t.key.key)).status).toBe(200);
    expect(await tables.queueOf(h.id)).toEqual([]);
    expect((await api("GET", `/v1/webhooks/${h.id}/deliveries`, t.key.key)).status).toBe(404);
  });

  it("cuts an attempt still hanging when its replica shuts down, records it, and the next replica delivers", async () => {
    await replaceReplicas(1, { ...FAST, WEBHOOK_TIMEOUT_MS: "60000" });
    const h = await hook(t.key.key);
    receiver.mode(h.path, "hang");
    await feed.publish(event({ subject: "cut short" }));
    await arrived(h.path, 1);
    receiver.mode(h.path, 200);
    for (const r of s.realtimes.splice(0)) await r.destroy();
    await s.startRealtime();
    await arrived(h.path, 2);
    expect(receiver.at(h.path)[1]!.headers[WebhookHeaders.attempt]).toBe("2");
    await waitFor(async () => (await log(h.id)).deliveries[0]?.success === true, { what: "the second attempt logged" });
    // The cut attempt was recorded (not left to its lease): the next one came at once.
    expect((await log(h.id)).deliveries).toMatchObject([
      { attempt: 2, success: true },
      { attempt: 1, statusCode: null, success: false, error: expect.any(String) },
    ]);
  });

  it("finishes a delivery waiting for its retry after the replicas are stopped and a new one started", async () => {
    // A replica whose retries wait 3 s: long enough to stop it in between.
    await replaceReplicas(1, { WEBHOOK_RETRY_BASE_MS: "3000", WEBHOOK_RETRY_MAX_DELAY_MS: "3000", WEBHOOK_RETRY_WINDOW_S: "60" });
    const h = await hook(t.key.key);
    receiver.script(h.path, 500);
    const e = event({ subject: "across a restart" });
    await feed.publish(e);
    await waitFor(async () => (await log(h.id)).deliveries.length === 1, { timeoutMs: 10_000, what: "the first attempt logged" });
    expect((await log(h.id)).deliveries[0]).toMatchObject({ statusCode: 500, success: false, nextAttemptAt: expect.any(String) });
    for (const r of s.realtimes.splice(0)) await r.destroy();
    expect(receiver.at(h.path)).toHaveLength(1);
    await s.startRealtime();
    await arrived(h.path, 2);
    const [first, second] = receiver.at(h.path);
    expect([second!.headers[WebhookHeaders.attempt], second!.headers[WebhookHeaders.eventId]]).toEqual(["2", e.eventId]);
    expect(second!.raw.equals(first!.raw)).toBe(true);
    expect(verifies(h.secret, second!)).toBe(true);
    await waitFor(async () => (await log(h.id)).deliveries[0]?.success === true, { what: "the second attempt logged" });
  });

  it("prunes finished deliveries past the feed's retention and the log past its own, and only those", async () => {
    const h = await hook(t.key.key);
    await feed.publish(event({ subject: "to be forgotten" }));
    await waitFor(async () => (await log(h.id)).deliveries.length === 1, { what: "the attempt logged" });
    await settled(h.id);
    const ctx = s.realtimes[0]!.ctx;
    const inDays = (d: number) => new Date(Date.now() + d * 86_400_000);
    // Within the feed's retention (a day) this delivery stays: it still dedupes a redelivered
    // entry. (The counts pruneWebhookLog returns include the other tests' rows: only this
    // webhook's rows are checked.)
    await pruneWebhookLog(ctx, inDays(0.5));
    expect(await tables.queueOf(h.id)).toHaveLength(1);
    // After it, the finished delivery goes; the log stays for its 30 days.
    expect(await pruneWebhookLog(ctx, inDays(2))).toBeGreaterThan(0);
    expect(await tables.queueOf(h.id)).toEqual([]);
    expect((await log(h.id)).deliveries).toHaveLength(1);
    await pruneWebhookLog(ctx, inDays(29));
    expect((await log(h.id)).deliveries).toHaveLength(1);
    expect(await pruneWebhookLog(ctx, inDays(31))).toBeGreaterThan(0);
    expect((await log(h.id)).deliveries).toEqual([]);
  });
});
