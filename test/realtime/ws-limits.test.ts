import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import WebSocket from "ws";
import { WsClose } from "@mam/contracts/ws-frames.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { rpcSubject } from "@mam/contracts/subjects.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { UpgradeRefused, WsClient } from "@mam/testing/ws-client.ts";
import { provisionTenant, Stack } from "../support/stack.ts";
import { closedWithin, connectionsOf, eventNamed, FeedWriter, openWs, subscribe, wsUrl } from "./ws-support.ts";

/**
 * What one realtime replica does to protect itself and its other clients: a slow client is
 * closed (never an unbounded queue), a tenant's connections are capped, a silent client is
 * dropped, and at shutdown every client is told to go.
 */
describe("WebSocket limits", () => {
  const s = new Stack({
    logLevel: "warn",
    realtime: 1,
    realtimeEnv: { WS_MAX_BUFFERED_BYTES: String(256 * 1024), WS_MAX_CONNECTIONS_PER_TENANT: "3", WS_PING_INTERVAL_S: "3" },
  });
  const feed = new FeedWriter(s);
  const clients: WsClient[] = [];
  const open = async (key: string) => {
    const c = await openWs(s, key);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    await s.start();
  });
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await feed.close();
    await s.stop();
  });

  it("closes a client that stops reading with 4008 once its buffer passes the cap, and keeps a reading one", async () => {
    const t = await provisionTenant(s, "Slow");
    const scope = { tenantId: t.tenant.id, workspaceId: t.workspace.id, inboxId: null };
    const slow = await open(t.key.key);
    const reader = await open(t.key.key);
    await subscribe(slow);
    await subscribe(reader);
    slow.ws.pause();
    // Large events until the replica lets the slow one go: the sockets between (the gateway's,
    // the kernel's) hold some megabytes first; the replica's own buffer holds 256 KiB.
    const body = "x".repeat(60_000);
    let last = "";
    for (let i = 0; connectionsOf(s, t.tenant.id)[0] === 2; i++) {
      expect(i).toBeLessThan(3_000);
      last = (await feed.publish(scope, { domain: { domainId: t.workspace.id, domain: body } })).eventId;
    }
    await eventNamed(reader, last, 30_000);
    slow.ws.resume();
    const closed = await closedWithin(slow, 30_000);
    expect(closed.code).toBe(WsClose.slowConsumer);
    expect(closed.reason).toMatch(/slow/i);
    expect(connectionsOf(s, t.tenant.id)).toEqual([1]);
    reader.send({ type: "ping" });
    await reader.next((f) => f.type === "pong");
    reader.close();
  });

  it("caps a tenant's connections on a replica with 4029, without touching another tenant", async () => {
    const t = await provisionTenant(s, "Busy");
    const other = await provisionTenant(s, "Other");
    const three = [await open(t.key.key), await open(t.key.key), await open(t.key.key)];
    const fourth = await WsClient.open(wsUrl(s), { "X-API-Key": t.key.key });
    clients.push(fourth);
    expect((await closedWithin(fourth, 5_000)).code).toBe(WsClose.tooManyConnections);
    expect(fourth.frames).toEqual([]);
    expect((await open(other.key.key)).frames[0]).toMatchObject({ type: "connected", tenantId: other.tenant.id });
    // A slot freed is a slot again.
    three[0]!.close();
    await waitFor(() => connectionsOf(s, t.tenant.id)[0] === 2, { what: "the closed connection gone" });
    expect((await open(t.key.key)).frames[0]).toMatchObject({ type: "connected" });
  });

  it("pings every interval, and drops a client that answers neither pings nor frames", async () => {
    const t = await provisionTenant(s, "Quiet");
    const alive = await open(t.key.key);
    await alive.next((f) => f.type === "ping", 5_000);
    // A client that answers nothing: no protocol pong, no frame.
    const silent = await new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(wsUrl(s), { headers: { "X-API-Key": t.key.key }, autoPong: false });
      ws.once("open", () => resolve(ws));
      ws.once("error", reject);
    });
    const code = await new Promise<number>((resolve) => silent.once("close", (c) => resolve(c)));
    expect(code).toBe(1006);
    // The one that answers (ws answers protocol pings itself) is still there.
    alive.send({ type: "ping" });
    await alive.next((f) => f.type === "pong");
    expect(connectionsOf(s, t.tenant.id)).toEqual([1]);
    alive.close();
  });

  it("a gateway going away tells its clients 1001 between two of the replica's frames, while large ones stream", async () => {
    const t = await provisionTenant(s, "Gateway leaving");
    const scope = { tenantId: t.tenant.id, workspaceId: t.workspace.id, inboxId: null };
    const g = await s.startGateway();
    const c = await WsClient.open(wsUrl(s, "/v1/ws", s.gateways.indexOf(g)), { "X-API-Key": t.key.key });
    clients.push(c);
    await subscribe(c);
    // Events of 200 KB keep coming while the gateway stops: a close frame cut into one of them
    // would be a protocol error to the client (1002 or 1006), not 1001.
    const body = "x".repeat(200_000);
    let publishing = true;
    const publisher = (async () => {
      while (publishing) await feed.publish(scope, { domain: { domainId: t.workspace.id, domain: body } });
    })();
    try {
      await c.next((f) => f.type === "event");
      s.gateways.splice(s.gateways.indexOf(g), 1);
      await g.destroy();
      const closed = await closedWithin(c, 10_000);
      expect(closed.code).toBe(WsClose.goingAway);
      expect(closed.reason).toMatch(/reconnect and resume/);
    } finally {
      publishing = false;
      await publisher;
    }
  });

  it("tells every client to go with 1001 at shutdown; with no replica left the door answers 503", async () => {
    const t = await provisionTenant(s, "Leaving");
    const c = await open(t.key.key);
    await subscribe(c);
    const [replica] = s.realtimes.splice(0);
    const stopping = replica!.destroy();
    expect((await closedWithin(c, 10_000)).code).toBe(WsClose.goingAway);
    await stopping;
    const refused = await WsClient.open(wsUrl(s), { "X-API-Key": t.key.key }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UpgradeRefused);
    expect(refused).toMatchObject({ status: 503, body: { code: "UNAVAILABLE" } });
  });

  it("answers 503 when the replica named is unreachable or never answers the upgrade", async () => {
    const t = await provisionTenant(s, "Stranded");
    // A broken replica in the queue group's place: its door refuses connections, then accepts and stays silent.
    const mute = createServer(() => undefined);
    await new Promise<void>((r) => mute.listen(0, "127.0.0.1", () => r()));
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const nc = await connect({ servers: s.iso.urls.NATS_URL });
    let port = closedPort;
    const responder = nc.subscribe(rpcSubject(s.iso.prefix, RpcContracts.realtime.wsRoute.subject), {
      queue: "realtime",
      callback: (_err, msg) => {
        msg.respond(JSON.stringify({ ok: true, status: 200, body: { host: "127.0.0.1", port, replicaId: "broken" } }));
      },
    });
    try {
      for (const p of [closedPort, (mute.address() as AddressInfo).port]) {
        port = p;
        const refused = await WsClient.open(wsUrl(s), { "X-API-Key": t.key.key }).catch((e: unknown) => e);
        expect(refused).toMatchObject({ status: 503, body: { code: "UNAVAILABLE", error: expect.any(String) } });
      }
    } finally {
      responder.unsubscribe();
      await nc.close();
      mute.close();
    }
  });
});
