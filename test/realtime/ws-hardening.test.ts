import { randomBytes } from "node:crypto";
import { connect as tcpConnect, type Socket } from "node:net";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { feedStreamName, feedSubject, type FeedEvent } from "@mam/contracts/realtime-feed.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { WsClose } from "@mam/contracts/ws-frames.ts";
import { uuidv7 } from "@mam/runtime/ids.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import type { WsClient } from "@mam/testing/ws-client.ts";
import { provisionTenant, Stack } from "../support/stack.ts";
import { closedWithin, eventIds, eventNamed, FeedWriter, feedMessage, openWs, subscribe, type Scope } from "./ws-support.ts";

/** A raw TCP client of the gateway: what it was sent, whether the server closed it. */
class RawClient {
  received = Buffer.alloc(0);
  ended = false;
  closed = false;
  readonly socket: Socket;

  constructor(port: number) {
    // Half-open allowed: the client never closes its side itself; only the server can end the connection.
    this.socket = tcpConnect({ host: "127.0.0.1", port, allowHalfOpen: true });
    this.socket.on("data", (d: Buffer) => (this.received = Buffer.concat([this.received, d])));
    this.socket.on("end", () => (this.ended = true));
    this.socket.on("error", () => undefined);
    this.socket.on("close", () => (this.closed = true));
  }

  get text(): string {
    return this.received.toString("latin1");
  }

  /** Keeps writing a byte until the server's socket is gone (a write to a closed socket is reset). */
  async closedByServer(timeoutMs: number): Promise<void> {
    await waitFor(
      () => {
        if (!this.closed && !this.socket.destroyed) this.socket.write("x");
        return this.closed;
      },
      { timeoutMs, intervalMs: 50, what: "the server to close the connection" },
    );
  }
}

/** The head of an upgrade request to the gateway. */
function upgradeHead(path: string, headers: Record<string, string>): string {
  const lines = [
    `GET ${path} HTTP/1.1`,
    "Host: 127.0.0.1",
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`,
    "Sec-WebSocket-Version: 13",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  return `${lines.join("\r\n")}\r\n\r\n`;
}

/** A masked client text frame (RFC 6455 §5.2), short payloads only. */
function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

/**
 * What a hostile client or an unlucky moment must not get past: a refusal that leaves the
 * connection open, an upgrade carrying a body, pings that bypass the frame rate, resumes that
 * make the server create consumers without end, and a replay that meets the live events late.
 */
describe("WebSocket hardening", () => {
  const s = new Stack({ logLevel: "warn", realtime: 1, realtimeEnv: { WS_DIRECTORY_WAIT_MS: "500" } });
  const feed = new FeedWriter(s);
  const clients: WsClient[] = [];
  let nc: NatsConnection;
  let t: Awaited<ReturnType<typeof provisionTenant>>;
  let other: Awaited<ReturnType<typeof provisionTenant>>;
  let scope: Scope;
  const open = async (key: string) => {
    const c = await openWs(s, key);
    clients.push(c);
    return c;
  };
  const gatewayPort = () => s.gateways[0]!.port;
  /**
   * Runs `fn` while the replica's directory cannot write new inboxes (a table lock; its reads go
   * on), given the inbox created then; `release` lets the writes through (at the end at the latest).
   */
  const withNewInboxHeld = async (username: string, fn: (fresh: { id: string }, release: () => Promise<void>) => Promise<void>) => {
    const db = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await db.connect();
    try {
      await db.query("begin");
      await db.query(`lock table "${s.iso.schema("realtime")}".ws_inboxes in exclusive mode`);
      const fresh = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username } })).body;
      await fn(fresh, async () => void (await db.query("commit")));
    } finally {
      await db.query("rollback").catch(() => undefined);
      await db.end();
    }
  };

  beforeAll(async () => {
    await s.start();
    nc = await connect({ servers: s.iso.urls.NATS_URL });
    t = await provisionTenant(s, "Hardened");
    other = await provisionTenant(s, "Noise");
    scope = { tenantId: t.tenant.id, workspaceId: t.workspace.id, inboxId: null };
  });
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await feed.close();
    await nc?.close();
    await s.stop();
  });

  describe("the gateway's door", () => {
    it("closes the connection after refusing an upgrade, even when the client never closes its side", async () => {
      const c = new RawClient(gatewayPort());
      c.socket.write(upgradeHead("/v1/ws", {}));
      await waitFor(() => c.ended, { timeoutMs: 5_000, what: "the refusal" });
      expect(c.text).toMatch(/^HTTP\/1\.1 401 /);
      expect(JSON.parse(c.text.slice(c.text.indexOf("\r\n\r\n") + 4))).toMatchObject({ code: "UNAUTHORIZED" });
      await c.closedByServer(5_000);
    });

    it("closes the connection after serving another path that asked for an upgrade (h2c) as a plain request", async () => {
      const c = new RawClient(gatewayPort());
      c.socket.write(
        `GET /v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${t.key.key}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`,
      );
      await waitFor(() => c.ended, { timeoutMs: 5_000, what: "the answer" });
      expect(c.text).toMatch(/^HTTP\/1\.1 200 /);
      await c.closedByServer(5_000);
    });

    it("refuses an upgrade request that carries a body instead of handing the replica a different request", async () => {
      for (const [framing, body] of [
        ["Content-Length: 5", "hello"],
        ["Transfer-Encoding: chunked", "5\r\nhello\r\n0\r\n\r\n"],
      ] as const) {
        const c = new RawClient(gatewayPort());
        const [name, value] = framing.split(": ") as [string, string];
        c.socket.write(upgradeHead("/v1/ws", { "X-API-Key": t.key.key, [name]: value }) + body);
        await waitFor(() => c.ended || c.closed, { timeoutMs: 5_000, what: "the answer" });
        expect(c.text).toMatch(/^HTTP\/1\.1 400 /);
        c.socket.destroy();
      }
    });

    it("hands the replica the bytes a client sent right behind its upgrade request", async () => {
      const c = new RawClient(gatewayPort());
      // The upgrade and a first frame in one write: the frame reaches the gateway with the head.
      c.socket.write(Buffer.concat([Buffer.from(upgradeHead("/v1/ws", { "X-API-Key": t.key.key })), maskedTextFrame(JSON.stringify({ type: "ping" }))]));
      await waitFor(() => c.text.includes('"type":"pong"'), { timeoutMs: 5_000, what: "the pong" });
      expect(c.text).toMatch(/^HTTP\/1\.1 101 /);
      c.socket.destroy();
    });
  });

  it("creates one feed consumer at a time for a client resuming over and over, and leaves none behind", async () => {
    const stream = feedStreamName(s.iso.prefix);
    const names = () => s.iso.jetstream(async (jsm) => (await jsm.consumers.list(stream).next()).map((ci) => ci.name).sort());
    const created: string[] = [];
    const advisories = nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.CREATED.${stream}.>`, {
      callback: (_err, m) => void created.push(m.subject),
    });
    const before = await names();
    try {
      const first = await feed.publish(scope);
      for (let i = 0; i < 20; i++) await feed.publish(scope);
      const c = await open(t.key.key);
      // A client re-sending the same resume as fast as it is answered.
      const answers: string[] = [];
      for (let i = 0; i < 20; i++) {
        c.send({ type: "subscribe", last_event_id: first.eventId });
        const a = await c.next((f) => f.type === "subscribed" || f.type === "error");
        answers.push(a.type === "error" ? String(a.code) : a.type);
      }
      const live = await feed.publish(scope);
      await eventNamed(c, live.eventId);
      await nc.flush();
      // A few resumes, then RATE_LIMITED (the subscription before stays), and the connection lives on.
      expect(answers.slice(0, 3)).toEqual(["subscribed", "subscribed", "subscribed"]);
      expect(answers.slice(3).every((a) => a === "RATE_LIMITED")).toBe(true);
      expect(created.length).toBeGreaterThan(0);
      expect(created.length).toBeLessThanOrEqual(3);
      c.close();
      await waitFor(async () => JSON.stringify(await names()) === JSON.stringify(before), { timeoutMs: 10_000, what: "the replays' consumers gone" });
    } finally {
      advisories.unsubscribe();
    }
  });

  it("meets the live events after a replay without a repeat, even when the fan-out is behind the replay", async () => {
    const seen = await open(t.key.key);
    await subscribe(seen);
    const last = await feed.publish(scope);
    await eventNamed(seen, last.eventId);
    seen.ws.terminate();

    const again = await open(t.key.key);
    // Many entries of another tenant ahead of the client's own, published in one go: the
    // replica's one fan-out reads them all, the client's replay only its own, so the replay
    // gets to the end of the feed well before the fan-out does.
    const noiseInbox = uuidv7();
    const noise = (): FeedEvent => ({
      eventId: `evt_${uuidv7()}`,
      eventType: "message.received",
      occurredAt: new Date().toISOString(),
      tenantId: other.tenant.id,
      workspaceId: other.workspace.id,
      inboxId: noiseInbox,
      message: feedMessage(noiseInbox, "n".repeat(2_000)),
    });
    const own = (): FeedEvent => ({
      eventId: `evt_${uuidv7()}`,
      eventType: "domain.verified",
      occurredAt: new Date().toISOString(),
      ...scope,
      domain: { domainId: uuidv7(), domain: "example.org" },
    });
    for (let i = 0; i < 30_000; i++) {
      const e = noise();
      nc.publish(feedSubject(s.iso.prefix, e), JSON.stringify(e));
    }
    const missed = Array.from({ length: 5 }, own);
    for (const e of missed) nc.publish(feedSubject(s.iso.prefix, e), JSON.stringify(e));
    await nc.flush();
    expect(await subscribe(again, { last_event_id: last.eventId })).toMatchObject({ type: "subscribed" });
    const after = await feed.publish(scope);
    await eventNamed(again, after.eventId, 30_000);
    expect(eventIds(again)).toEqual([...missed.map((e) => e.eventId), after.eventId]);
    again.close();
  });

  it("does not refuse an inbox created just before while the directory runs late: refusals wait until the directory holds it, on one poll of the replica", async () => {
    // Asked of the server while the frames wait: how the replica learns the directory has caught up.
    let asked = 0;
    const infos = nc.subscribe(`$JS.API.CONSUMER.INFO.${eventsStreamName(s.iso.prefix)}.*`, {
      callback: (_err, m) => {
        if (m.subject.split(".").at(-1)!.startsWith("realtime-ws-")) asked++;
      },
    });
    // The directory's writes of new inboxes are held for three times the wait.
    await withNewInboxHeld("late-directory", async (fresh, release) => {
      const waiting = await Promise.all(Array.from({ length: 10 }, () => open(t.key.key)));
      for (const c of waiting) c.send({ type: "subscribe", inbox_ids: [fresh.id] });
      await new Promise((r) => setTimeout(r, 1_500));
      await release();
      for (const c of waiting) {
        expect(await c.next((f) => f.type === "subscribed" || f.type === "error", 10_000)).toMatchObject({ type: "subscribed", inbox_ids: [fresh.id] });
      }
      // Ten frames waiting a second past their wait: a few checks of the four consumers every
      // 200 ms for them all, not each frame's own (a poll per frame asks about ten times as often).
      expect(asked).toBeLessThanOrEqual(60);
      // An id no inbox has is still refused, once the directory is known to hold everything.
      waiting[0]!.send({ type: "subscribe", inbox_ids: [uuidv7()] });
      expect(await waiting[0]!.next((f) => f.type === "subscribed" || f.type === "error", 10_000)).toMatchObject({ type: "error", code: "NOT_FOUND" });
    }).finally(() => infos.unsubscribe());
  });

  it("a frame waiting on a late directory past the wait gives way to the client's next frame, unanswered", async () => {
    await withNewInboxHeld("given-way", async (fresh, release) => {
      const c = await open(t.key.key);
      c.send({ type: "subscribe", inbox_ids: [fresh.id] });
      // Past its wait (500 ms) the first frame waits on the held directory; the next one is answered meanwhile.
      await new Promise((r) => setTimeout(r, 800));
      c.send({ type: "subscribe", workspace_ids: [t.workspace.id] });
      expect(await c.next((f) => f.type === "subscribed" || f.type === "error", 5_000)).toMatchObject({ type: "subscribed", workspace_ids: [t.workspace.id] });
      await release();
      // The first frame is never answered.
      await new Promise((r) => setTimeout(r, 500));
      expect(c.frames.filter((f) => f.type === "subscribed" || f.type === "error")).toHaveLength(1);
    });
  });

  it("a frame refused within its wait is answered NOT_FOUND even when the client's next frame came meanwhile", async () => {
    const c = await open(t.key.key);
    c.send({ type: "subscribe", inbox_ids: [uuidv7()] });
    await new Promise((r) => setTimeout(r, 100));
    c.send({ type: "subscribe", workspace_ids: [t.workspace.id] });
    expect(await c.next((f) => f.type === "subscribed" || f.type === "error", 5_000)).toMatchObject({ type: "error", code: "NOT_FOUND" });
    expect(await c.next((f) => f.type === "subscribed" || f.type === "error", 5_000)).toMatchObject({ type: "subscribed", workspace_ids: [t.workspace.id] });
  });

  it("keeps giving each client each event once, in order, and hearing revocations, after the replica reconnects to NATS", async () => {
    // A tenant of its own: nothing published before this test is its.
    const u = await provisionTenant(s, "Reconnected");
    const own = { tenantId: u.tenant.id, workspaceId: u.workspace.id, inboxId: null };
    const key = (await s.api("POST", `/v1/workspaces/${u.workspace.id}/keys`, { key: u.key.key, body: {} })).body;
    const c = await open(u.key.key);
    await subscribe(c);
    const revoked = await open(key.key);
    const events: FeedEvent[] = [];
    for (let i = 0; i < 5; i++) events.push(await feed.publish(own));
    await eventNamed(c, events.at(-1)!.eventId);
    await s.realtimes[0]!.ctx.bus.nc.reconnect();
    for (let i = 0; i < 5; i++) events.push(await feed.publish(own));
    await eventNamed(c, events.at(-1)!.eventId, 10_000);
    expect(eventIds(c)).toEqual(events.map((e) => e.eventId));
    expect((await s.api("DELETE", `/v1/workspaces/${u.workspace.id}/keys/${key.id}`, { key: u.key.key })).status).toBe(200);
    expect((await closedWithin(revoked, 5_000)).code).toBe(WsClose.revoked);
    c.close();
  });
});
