import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WsClose } from "@mam/contracts/ws-frames.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { WsClient } from "@mam/testing/ws-client.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/**
 * The whole path, through the real doors: mail over SMTP to an inbox, two realtime replicas,
 * WebSocket clients through the gateway and a webhook receiver checking signatures.
 */
describe("realtime, end to end", () => {
  let s: Stack;
  let tenant: Awaited<ReturnType<typeof provisionTenant>>;
  let inbox: { id: string; email: string; apiKey: string };
  let receiver: Server;
  let hookUrl: string;
  /** Every request the receiver got; each test's webhook has a path of its own (`path`). */
  const received: { path: string; headers: IncomingHttpHeaders; raw: Buffer }[] = [];
  /** Answers per request, in order; 200 once they run out. */
  const script: number[] = [];

  const wsUrl = (path = "/v1/ws") => `ws://127.0.0.1:${s.gateways[0]!.port}${path}`;
  const open = async (key: string, path?: string) => {
    const c = await WsClient.open(wsUrl(path), { "X-API-Key": key });
    await c.next((f) => f.type === "connected");
    return c;
  };
  const subscribe = async (c: WsClient, frame: Record<string, unknown>) => {
    c.send({ type: "subscribe", ...frame });
    return c.next((f) => f.type === "subscribed" || f.type === "error");
  };
  const mail = (subject: string, to = inbox.email) =>
    nodemailer
      .createTransport({ host: "127.0.0.1", port: s.smtp!.port, secure: false, ignoreTLS: true })
      .sendMail({ from: "Ada <ada@example.org>", to, subject, text: `Body of ${subject}` });
  type Event = {
    type: "event";
    event_id: string;
    event_type: string;
    message?: { subject: string; plain_body: string | null; from: string; inbox_id: string };
  };
  const eventFor = (c: WsClient, subject: string) => c.next<Event>((f) => f.type === "event" && (f as Event).message?.subject === subject, 15_000);
  const signed = (secret: string, h: IncomingHttpHeaders, raw: Buffer) => {
    const same = (got: unknown, want: string) => typeof got === "string" && got.length === want.length && timingSafeEqual(Buffer.from(got), Buffer.from(want));
    const plain = `v1=${createHmac("sha256", secret).update(raw).digest("hex")}`;
    const ts = String(h["x-myagentmail-timestamp"]);
    const withTs = `v1=${createHmac("sha256", secret).update(`${ts}.`).update(raw).digest("hex")}`;
    return same(h["x-myagentmail-signature"], plain) && same(h["x-myagentmail-signature-ts"], withTs) && /^\d{10}$/.test(ts);
  };

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push({ path: req.url ?? "", headers: req.headers, raw: Buffer.concat(chunks) });
        res.writeHead(script.shift() ?? 200).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", () => r()));
    hookUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hooks/`;
    s = new Stack({ logLevel: "warn", smtp: true, realtime: 2, realtimeEnv: { WEBHOOK_RETRY_BASE_MS: "200", WEBHOOK_RETRY_MAX_DELAY_MS: "400" } });
    await s.start();
    tenant = await provisionTenant(s, "Realtime");
    inbox = (await s.api("POST", "/v1/inboxes", { key: tenant.key.key, body: { username: "live" } })).body;
    // smtp-ingress learns of the inbox through an event.
    await waitFor(
      async () =>
        await mail("probe").then(
          () => true,
          () => false,
        ),
      { timeoutMs: 10_000, what: "the inbox's address known to SMTP" },
    );
  });
  afterAll(async () => {
    await s?.stop();
    receiver?.close();
  });

  it("delivers mail that arrived over SMTP to WebSocket subscribers (workspace_ids and pod_ids) and to a signed webhook", async () => {
    const hook = await s.api("POST", "/v1/webhooks", { key: tenant.key.key, body: { url: hookUrl, events: ["message.received"] } });
    expect(hook.status).toBe(201);
    const byWorkspace = await open(tenant.key.key);
    const byPod = await open(tenant.key.key);
    expect(await subscribe(byWorkspace, { workspace_ids: [tenant.workspace.id] })).toMatchObject({ type: "subscribed", workspace_ids: [tenant.workspace.id] });
    expect(await subscribe(byPod, { pod_ids: [tenant.workspace.id], event_types: ["message.received"] })).toMatchObject({
      type: "subscribed",
      event_types: ["message.received"],
    });

    const before = received.length;
    await mail("hello over smtp");
    const [a, b] = await Promise.all([eventFor(byWorkspace, "hello over smtp"), eventFor(byPod, "hello over smtp")]);
    for (const e of [a, b]) {
      expect(e).toMatchObject({ event_type: "message.received", workspace_id: tenant.workspace.id, pod_id: tenant.workspace.id, inbox_id: inbox.id });
      expect(e.message).toMatchObject({
        inbox_id: inbox.id,
        plain_body: expect.stringContaining("Body of hello over smtp"),
        from: expect.stringContaining("ada@example.org"),
      });
    }
    expect(a.event_id).toBe(b.event_id);
    // Text frames, as the reference's clients expect (JSON in a text frame, never binary).
    expect(byWorkspace.binaryFrames + byPod.binaryFrames).toBe(0);

    await waitFor(() => received.slice(before).some((r) => r.raw.includes("hello over smtp")), { timeoutMs: 15_000, what: "the webhook request" });
    const delivery = received.slice(before).find((r) => r.raw.includes("hello over smtp"))!;
    expect(signed(hook.body.secret, delivery.headers, delivery.raw)).toBe(true);
    expect(signed("whsec_not-the-secret", delivery.headers, delivery.raw)).toBe(false);
    expect(delivery.headers["x-myagentmail-event-id"]).toBe(a.event_id);
    expect(JSON.parse(delivery.raw.toString("utf8"))).toMatchObject({
      event: "message.received",
      eventId: a.event_id,
      inboxId: inbox.id,
      subject: "hello over smtp",
    });
    byWorkspace.close();
    byPod.close();
    await s.api("DELETE", `/v1/webhooks/${hook.body.id}`, { key: tenant.key.key });
  });

  it("gives each client each event once with two replicas, and the webhook each event once", async () => {
    const hook = (await s.api("POST", "/v1/webhooks", { key: tenant.key.key, body: { url: hookUrl, events: ["message.received"] } })).body;
    const clients = await Promise.all(Array.from({ length: 8 }, () => open(tenant.key.key)));
    for (const c of clients) await subscribe(c, { inbox_ids: [inbox.id] });
    const subjects = ["once 1", "once 2", "once 3", "once 4"];
    for (const subject of subjects) await mail(subject);
    for (const c of clients) for (const subject of subjects) await eventFor(c, subject);
    await waitFor(() => subjects.every((sub) => received.some((r) => r.raw.includes(`"${sub}"`))), { timeoutMs: 15_000, what: "the webhook requests" });
    // Anything late would have come by now: the last event of every client is in.
    await new Promise((r) => setTimeout(r, 500));
    for (const c of clients) {
      const ids = c.events<Event>().map((e) => e.event_id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(c.events<Event>().filter((e) => subjects.includes(e.message?.subject ?? "")).length).toBe(subjects.length);
    }
    for (const sub of subjects)
      expect(new Set(received.filter((r) => r.raw.includes(`"${sub}"`)).map((r) => r.headers["x-myagentmail-event-id"])).size).toBe(1);
    // Both replicas had clients (the gateway's pick is the queue group's, random).
    for (const c of clients) c.close();
    await s.api("DELETE", `/v1/webhooks/${hook.id}`, { key: tenant.key.key });
  });

  it("resumes after a disconnect with the events it missed, each once, in order, then live", async () => {
    const first = await open(inbox.apiKey);
    await subscribe(first, {});
    await mail("before the break");
    const last = await eventFor(first, "before the break");
    first.ws.terminate();
    const missed = ["missed 1", "missed 2", "missed 3"];
    for (const subject of missed) await mail(subject);
    // Each is in the inbox before the client comes back.
    await waitFor(
      async () =>
        (await s.api("GET", `/v1/inboxes/${inbox.id}/messages?limit=100`, { key: inbox.apiKey })).body.messages.filter((m: { subject: string }) =>
          missed.includes(m.subject),
        ).length === 3,
      {
        timeoutMs: 15_000,
        what: "the missed mail filed",
      },
    );
    await new Promise((r) => setTimeout(r, 300));

    const again = await open(inbox.apiKey);
    await subscribe(again, { last_event_id: last.event_id });
    for (const subject of missed) await eventFor(again, subject);
    await mail("after the resume");
    await eventFor(again, "after the resume");
    const subjects = again.events<Event>().map((e) => e.message?.subject);
    expect(subjects.filter((x) => x !== "probe")).toEqual([...missed, "after the resume"]);
    again.close();
  });

  it("retries a failing webhook endpoint until it succeeds", async () => {
    const hook = (await s.api("POST", "/v1/webhooks", { key: tenant.key.key, body: { url: `${hookUrl}retry`, events: ["message.received"] } })).body;
    script.push(500, 503);
    await mail("third time lucky");
    const attemptsOf = () => received.filter((r) => r.path === "/hooks/retry" && r.raw.includes("third time lucky"));
    await waitFor(() => attemptsOf().length >= 3, { timeoutMs: 20_000, what: "three attempts" });
    const attempts = attemptsOf();
    expect(attempts.map((r) => r.headers["x-myagentmail-delivery-attempt"])).toEqual(["1", "2", "3"]);
    expect(new Set(attempts.map((r) => r.headers["x-myagentmail-event-id"])).size).toBe(1);
    await waitFor(
      async () => {
        const log = (await s.api("GET", `/v1/webhooks/${hook.id}/deliveries`, { key: tenant.key.key })).body.deliveries as {
          statusCode: number;
          success: boolean;
        }[];
        return log.length >= 3 && log[0]!.success;
      },
      { timeoutMs: 5_000, what: "the delivery log" },
    );
    const log = (await s.api("GET", `/v1/webhooks/${hook.id}/deliveries`, { key: tenant.key.key })).body.deliveries as {
      statusCode: number;
      success: boolean;
    }[];
    expect(log.slice(0, 3).map((d) => d.statusCode)).toEqual([200, 503, 500]);
    expect((await s.api("GET", `/v1/webhooks/${hook.id}`, { key: tenant.key.key })).body.status).toBe("healthy");
    await s.api("DELETE", `/v1/webhooks/${hook.id}`, { key: tenant.key.key });
  });

  it("closes a socket when its key is revoked", async () => {
    const issued = (await s.api("POST", `/v1/workspaces/${tenant.workspace.id}/keys`, { key: tenant.key.key, body: { name: "short-lived" } })).body;
    const c = await open(issued.key);
    await subscribe(c, {});
    expect((await s.api("DELETE", `/v1/workspaces/${tenant.workspace.id}/keys/${issued.id}`, { key: tenant.key.key })).status).toBe(200);
    const closed = await Promise.race([c.closed, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5_000))]);
    expect(closed?.code).toBe(WsClose.revoked);
  });
});
