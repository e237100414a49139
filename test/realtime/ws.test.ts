import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PUBLIC_EVENT_TYPES, type FeedEvent } from "@mam/contracts/realtime-feed.ts";
import { WsClose } from "@mam/contracts/ws-frames.ts";
import { webSocketPartOf } from "@mam/realtime/ws/part.ts";
import { uuidv7 } from "@mam/runtime/ids.ts";
import { generateScopeKeys } from "@mam/scope/key-material.ts";
import { ScopeSigner } from "@mam/scope/token.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { UpgradeRefused, WsClient } from "@mam/testing/ws-client.ts";
import { provisionTenant, Stack } from "../support/stack.ts";
import { closedWithin, connectionsOf, eventIds, eventNamed, FeedWriter, openWs, subscribe, wsUrl, type Scope } from "./ws-support.ts";

type Inbox = { id: string; email: string; apiKey: string };

/**
 * The WebSocket door through the gateway, with two realtime replicas: who may connect, what
 * each subscription is sent (and never sent), resume, revocation. Events are published to the
 * feed stream by the test, in a known order: once a client has its last expected event, any
 * event it should not have had would have come before it.
 */
describe("WebSocket /v1/ws", () => {
  const s = new Stack({ logLevel: "warn", realtime: 2, realtimeEnv: { WS_DIRECTORY_WAIT_MS: "1000" } });
  const feed = new FeedWriter(s);
  let a: Awaited<ReturnType<typeof provisionTenant>>;
  let b: Awaited<ReturnType<typeof provisionTenant>>;
  /** Tenant A: its default workspace W1 (inboxes i1, i2), a second workspace W2 (inbox i3), a wk_ key of W1. */
  let w2: string;
  let wk: { id: string; key: string };
  let i1: Inbox;
  let i2: Inbox;
  let i3: Inbox;
  let iB: Inbox;
  const clients: WsClient[] = [];
  const track = (c: WsClient) => {
    clients.push(c);
    return c;
  };
  const open = async (key: string, o: Parameters<typeof openWs>[2] = {}) => track(await openWs(s, key, o));
  const at = (workspaceId: string, inboxId: string | null, tenantId = a.tenant.id): Scope => ({ tenantId, workspaceId, inboxId });

  const inbox = async (key: string, username: string, workspaceId?: string): Promise<Inbox> => {
    const r = await s.api("POST", "/v1/inboxes", { key, body: { username, ...(workspaceId && { workspaceId }) } });
    expect(r.status).toBe(201);
    return r.body;
  };

  beforeAll(async () => {
    await s.start();
    a = await provisionTenant(s, "A");
    b = await provisionTenant(s, "B");
    w2 = (await s.api("POST", "/v1/workspaces", { key: a.key.key, body: { name: "Second" } })).body.id;
    wk = (await s.api("POST", `/v1/workspaces/${a.workspace.id}/keys`, { key: a.key.key, body: { name: "ws" } })).body;
    i1 = await inbox(a.key.key, "one");
    i2 = await inbox(a.key.key, "two");
    i3 = await inbox(a.key.key, "three", w2);
    iB = await inbox(b.key.key, "bee");
  });
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await feed.close();
    await s.stop();
  });

  describe("the door", () => {
    const refusal = async (url: string, headers: Record<string, string> = {}) => {
      const err = await WsClient.open(url, headers).then(
        (c) => void c.ws.terminate(),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(UpgradeRefused);
      return err as UpgradeRefused;
    };

    it("refuses a missing, unknown or revoked key with 401 JSON before any upgrade", async () => {
      expect(await refusal(wsUrl(s))).toMatchObject({ status: 401, body: { code: "UNAUTHORIZED", error: expect.any(String) } });
      const unknown = `tk_${"A".repeat(43)}`;
      expect(await refusal(wsUrl(s), { "X-API-Key": unknown })).toMatchObject({ status: 401, body: { code: "UNAUTHORIZED" } });
      expect(await refusal(`${wsUrl(s)}?api_key=${unknown}`)).toMatchObject({ status: 401, body: { code: "UNAUTHORIZED" } });
      const gone = (await s.api("POST", `/v1/workspaces/${a.workspace.id}/keys`, { key: a.key.key, body: {} })).body;
      (await open(gone.key)).close();
      expect((await s.api("DELETE", `/v1/workspaces/${a.workspace.id}/keys/${gone.id}`, { key: a.key.key })).status).toBe(200);
      expect(await refusal(wsUrl(s), { "X-API-Key": gone.key })).toMatchObject({ status: 401, body: { code: "UNAUTHORIZED" } });
    });

    it("takes the key from X-API-Key, Authorization: Bearer or ?api_key=, and says who connected", async () => {
      for (const via of ["header", "bearer", "query"] as const) {
        const c = await open(a.key.key, { via });
        expect(c.frames[0]).toEqual({ type: "connected", keyKind: "tenant", tenantId: a.tenant.id, workspaceId: null, inboxId: null, email: null });
        c.close();
      }
      const agent = await open(i1.apiKey);
      expect(agent.frames[0]).toEqual({
        type: "connected",
        keyKind: "inbox",
        tenantId: a.tenant.id,
        workspaceId: a.workspace.id,
        inboxId: i1.id,
        email: i1.email,
      });
    });

    it("answers a plain GET with 426, an inbox out of scope with 404 and the operator with 403, all JSON", async () => {
      for (const path of ["/v1/ws", `/v1/inboxes/${i1.id}/ws`]) {
        const r = await s.api("GET", path, { key: a.key.key });
        expect(r.status).toBe(426);
        expect(r.body).toEqual({ error: expect.any(String), code: "VALIDATION_ERROR" });
      }
      expect(await refusal(wsUrl(s, `/v1/inboxes/${iB.id}/ws`), { "X-API-Key": a.key.key })).toMatchObject({ status: 404, body: { code: "NOT_FOUND" } });
      expect(await refusal(wsUrl(s, `/v1/inboxes/${i2.id}/ws`), { "X-API-Key": i1.apiKey })).toMatchObject({ status: 404, body: { code: "NOT_FOUND" } });
      expect(await refusal(wsUrl(s, "/v1/inboxes/not-a-uuid/ws"), { "X-API-Key": a.key.key })).toMatchObject({
        status: 400,
        body: { code: "VALIDATION_ERROR" },
      });
      expect(await refusal(wsUrl(s), { "X-API-Key": s.operatorKey })).toMatchObject({ status: 403, body: { code: "FORBIDDEN" } });
    });

    it("drops headers only the gateway may set: a client's own Mam-Inbox is not the per-inbox path", async () => {
      const c = track(await WsClient.open(wsUrl(s), { "X-API-Key": a.key.key, "Mam-Inbox": i1.id, "Mam-Inbox-Email": "forged@example.org" }));
      expect(await c.next((f) => f.type === "connected")).toMatchObject({ inboxId: null, email: null });
      expect(await subscribe(c)).toMatchObject({ type: "subscribed", inbox_ids: [] });
      c.close();
    });

    it("lets no one past a replica's own door without a scope token the gateway signed for realtime", async () => {
      const door = `ws://127.0.0.1:${webSocketPartOf(s.realtimes[0]!.ctx)!.door.port}/v1/ws`;
      const signer = new ScopeSigner(s.iso.scopeKeys.privateKeyPem);
      const principal = { keyId: wk.id, kind: "workspace" as const, tenantId: a.tenant.id, workspaceId: a.workspace.id, inboxId: null };
      expect(await refusal(door)).toMatchObject({ status: 401, body: { code: "UNAUTHORIZED" } });
      expect(await refusal(door, { "Mam-Scope": signer.mint(principal, ["mailbox"]) })).toMatchObject({ status: 401 });
      const forged = new ScopeSigner(generateScopeKeys().privateKeyPem).mint(principal, ["realtime"]);
      expect(await refusal(door, { "Mam-Scope": forged })).toMatchObject({ status: 401 });
      const c = track(await WsClient.open(door, { "Mam-Scope": signer.mint(principal, ["realtime"]) }));
      expect(await c.next((f) => f.type === "connected")).toMatchObject({ keyKind: "workspace", workspaceId: a.workspace.id });
      c.close();
    });

    it("closes at once a connection whose token was minted just before its key was revoked", async () => {
      const key = (await s.api("POST", `/v1/workspaces/${a.workspace.id}/keys`, { key: a.key.key, body: {} })).body;
      const door = `ws://127.0.0.1:${webSocketPartOf(s.realtimes[0]!.ctx)!.door.port}/v1/ws`;
      const signer = new ScopeSigner(s.iso.scopeKeys.privateKeyPem);
      const token = () => signer.mint({ keyId: key.id, kind: "workspace", tenantId: a.tenant.id, workspaceId: a.workspace.id, inboxId: null }, ["realtime"]);
      const before = track(await WsClient.open(door, { "Mam-Scope": token() }));
      await before.next((f) => f.type === "connected");
      const late = token();
      expect((await s.api("DELETE", `/v1/workspaces/${a.workspace.id}/keys/${key.id}`, { key: a.key.key })).status).toBe(200);
      // Once this replica has heard of it (the open connection closed), the token it had not seen is no good either.
      expect((await closedWithin(before, 5_000)).code).toBe(WsClose.revoked);
      const after = track(await WsClient.open(door, { "Mam-Scope": late }));
      expect((await closedWithin(after, 5_000)).code).toBe(WsClose.revoked);
      expect(after.frames).toEqual([]);
    });

    it("still serves another path that offers an upgrade (h2c) as the plain request it is", async () => {
      const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(`http://127.0.0.1:${s.gateways[0]!.port}/v1/me`, {
          headers: { "X-API-Key": a.key.key, Connection: "Upgrade, HTTP2-Settings", Upgrade: "h2c", "HTTP2-Settings": "AAMAAABkAAQAAP__" },
        });
        req.on("response", (res) => {
          let body = "";
          res.on("data", (d: Buffer) => (body += d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", reject);
        req.end();
      });
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ kind: "tenant", tenantId: a.tenant.id });
    });
  });

  describe("subscriptions", () => {
    it("sends each client exactly the events its filters and its key's scope select", async () => {
      const all = await open(a.key.key);
      const byWorkspace = await open(a.key.key);
      const byPod = await open(a.key.key);
      const byType = await open(a.key.key);
      const byInbox = await open(a.key.key);
      const workspaceKey = await open(wk.key);
      const agent = await open(i1.apiKey);
      expect(await subscribe(all)).toEqual({ type: "subscribed", event_types: [...PUBLIC_EVENT_TYPES], inbox_ids: [], workspace_ids: [], pod_ids: [] });
      expect(await subscribe(byWorkspace, { workspace_ids: [w2] })).toMatchObject({ type: "subscribed", workspace_ids: [w2], pod_ids: [w2] });
      expect(await subscribe(byPod, { pod_ids: [a.workspace.id] })).toMatchObject({ type: "subscribed", workspace_ids: [a.workspace.id] });
      expect(await subscribe(byType, { event_types: ["message.sent", "domain.verified"] })).toMatchObject({
        type: "subscribed",
        event_types: ["message.sent", "domain.verified"],
      });
      expect(await subscribe(byInbox, { inbox_ids: [i2.id, i3.id] })).toMatchObject({ type: "subscribed", inbox_ids: [i2.id, i3.id] });
      expect(await subscribe(workspaceKey)).toMatchObject({ type: "subscribed" });
      expect(await subscribe(agent)).toMatchObject({ type: "subscribed", inbox_ids: [i1.id] });

      const W1 = a.workspace.id;
      const published: FeedEvent[] = [];
      for (const [scope, type] of [
        [at(W1, i1.id), "message.received"],
        [at(W1, i2.id), "message.sent"],
        [at(w2, i3.id), "message.received"],
        [at(W1, null), "domain.verified"],
        [at(w2, null), "domain.verified"],
        [at(W1, i1.id), "message.bounced"],
        [at(b.workspace.id, iB.id, b.tenant.id), "message.received"],
        [at(w2, i3.id), "message.sent"],
      ] as const) {
        published.push(await feed.publish(scope, { eventType: type }));
      }
      const expected = (pick: (e: FeedEvent) => boolean) => published.filter(pick).map((e) => e.eventId);
      const ofA = (e: FeedEvent) => e.tenantId === a.tenant.id;
      const want = new Map<WsClient, string[]>([
        [all, expected(ofA)],
        [byWorkspace, expected((e) => ofA(e) && e.workspaceId === w2)],
        [byPod, expected((e) => ofA(e) && e.workspaceId === W1)],
        [byType, expected((e) => ofA(e) && (e.eventType === "message.sent" || e.eventType === "domain.verified"))],
        [byInbox, expected((e) => e.inboxId === i2.id || e.inboxId === i3.id)],
        [workspaceKey, expected((e) => ofA(e) && e.workspaceId === W1)],
        [agent, expected((e) => e.inboxId === i1.id)],
      ]);
      for (const [c, ids] of want) {
        expect(ids.length).toBeGreaterThan(0);
        await eventNamed(c, ids.at(-1)!);
      }
      // A fence each client is sent: anything it should not have had would be in by now.
      const fences = new Map<WsClient, FeedEvent>([
        [all, await feed.publish(at(W1, i1.id))],
        [byWorkspace, await feed.publish(at(w2, i3.id))],
        [byPod, await feed.publish(at(W1, i2.id))],
        [byType, await feed.publish(at(W1, i2.id), { eventType: "message.sent" })],
        [byInbox, await feed.publish(at(W1, i2.id))],
        [workspaceKey, await feed.publish(at(W1, null))],
        [agent, await feed.publish(at(W1, i1.id), { eventType: "message.delivered" })],
      ]);
      for (const [c, fence] of fences) await eventNamed(c, fence.eventId);
      for (const [c, ids] of want) {
        const got = eventIds(c);
        expect(got.slice(0, ids.length)).toEqual(ids);
        // After its own events, only fences (each once), never anything outside its filters.
        expect(got.slice(ids.length).every((id) => [...fences.values()].some((f) => f.eventId === id))).toBe(true);
        expect(new Set(got).size).toBe(got.length);
      }
      // The event frame carries what the feed entry said, in the WebSocket's shape.
      const first = all.events()[0];
      expect(first).toMatchObject({
        type: "event",
        event_type: "message.received",
        workspace_id: W1,
        pod_id: W1,
        inbox_id: i1.id,
        message: { inbox_id: i1.id },
      });
      for (const c of want.keys()) c.close();
    });

    it.each([
      ["a wk_ key naming another workspace", () => wk.key, () => ({ workspace_ids: [w2] }), () => at(w2, i3.id), () => at(a.workspace.id, i1.id)],
      ["a wk_ key naming an inbox of another workspace", () => wk.key, () => ({ inbox_ids: [i3.id] }), () => at(w2, i3.id), () => at(a.workspace.id, i2.id)],
      ["an ak_ key naming another inbox", () => i1.apiKey, () => ({ inbox_ids: [i2.id] }), () => at(a.workspace.id, i2.id), () => at(a.workspace.id, i1.id)],
      ["an ak_ key naming another workspace", () => i1.apiKey, () => ({ pod_ids: [w2] }), () => at(w2, i3.id), () => at(a.workspace.id, i1.id)],
      [
        "a tk_ key naming another tenant's workspace",
        () => a.key.key,
        () => ({ workspace_ids: [b.workspace.id] }),
        () => at(b.workspace.id, iB.id, b.tenant.id),
        () => at(w2, i3.id),
      ],
      [
        "a tk_ key naming another tenant's inbox",
        () => a.key.key,
        () => ({ inbox_ids: [iB.id] }),
        () => at(b.workspace.id, iB.id, b.tenant.id),
        () => at(w2, i3.id),
      ],
    ])("refuses %s with NOT_FOUND and applies none of it", async (_what, key, frame, theirs, own) => {
      const c = await open(key());
      expect(await subscribe(c)).toMatchObject({ type: "subscribed" });
      const refused = await subscribe(c, frame());
      expect(refused).toEqual({ type: "error", code: "NOT_FOUND", message: expect.any(String) });
      // The same words as for an id that exists nowhere: the answer does not tell.
      expect(await subscribe(c, { inbox_ids: [uuidv7()] })).toEqual(refused);
      const outside = await feed.publish(theirs());
      const inside = await feed.publish(own());
      await eventNamed(c, inside.eventId);
      expect(eventIds(c)).not.toContain(outside.eventId);
      c.close();
    });

    it("never sends a domain event to an inbox key", async () => {
      const agent = await open(i1.apiKey);
      await subscribe(agent);
      const domain = await feed.publish(at(a.workspace.id, null));
      const own = await feed.publish(at(a.workspace.id, i1.id));
      await eventNamed(agent, own.eventId);
      expect(eventIds(agent)).toEqual([own.eventId]);
      expect(domain.inboxId).toBeNull();
      agent.close();
    });

    it("subscribes the per-inbox path to its inbox, lets it narrow and never widen", async () => {
      const c = await open(a.key.key, { path: `/v1/inboxes/${i2.id}/ws` });
      expect(c.frames[0]).toMatchObject({ type: "connected", inboxId: i2.id, email: i2.email });
      expect(await c.next((f) => f.type === "subscribed" || f.type === "error")).toMatchObject({ type: "subscribed", inbox_ids: [i2.id] });
      const neighbour = await feed.publish(at(a.workspace.id, i1.id));
      const own = await feed.publish(at(a.workspace.id, i2.id));
      await eventNamed(c, own.eventId);
      expect(eventIds(c)).toEqual([own.eventId]);

      expect(await subscribe(c, { inbox_ids: [i1.id] })).toMatchObject({ type: "error", code: "NOT_FOUND" });
      expect(await subscribe(c, { event_types: ["message.sent"] })).toMatchObject({ type: "subscribed", inbox_ids: [i2.id], event_types: ["message.sent"] });
      const received = await feed.publish(at(a.workspace.id, i2.id));
      const sent = await feed.publish(at(a.workspace.id, i2.id), { eventType: "message.sent" });
      await eventNamed(c, sent.eventId);
      expect(eventIds(c)).toEqual([own.eventId, sent.eventId]);
      expect([neighbour.eventId, received.eventId].some((id) => eventIds(c).includes(id))).toBe(false);
      c.close();
    });

    it("answers bad frames with an error frame and keeps the connection; a frame far over the cap closes it with 1009", async () => {
      const c = await open(a.key.key);
      const answer = async (frame: string | Buffer) => {
        c.ws.send(frame);
        return c.next((f) => f.type === "error" || f.type === "pong" || f.type === "subscribed");
      };
      expect(await answer("not json")).toMatchObject({ type: "error", code: "INVALID_FRAME" });
      expect(await answer(JSON.stringify({ type: "unsubscribe" }))).toMatchObject({ type: "error", code: "INVALID_FRAME" });
      expect(await answer(JSON.stringify({ type: "subscribe", inbox_ids: [i1.id], extra: 1 }))).toMatchObject({ type: "error", code: "INVALID_FRAME" });
      expect(await answer(JSON.stringify({ type: "subscribe", inbox_ids: Array.from({ length: 101 }, () => uuidv7()) }))).toMatchObject({
        type: "error",
        code: "INVALID_FRAME",
      });
      expect(await answer(JSON.stringify({ type: "subscribe", event_types: ["message.read"] }))).toMatchObject({ type: "error", code: "INVALID_FRAME" });
      expect(await answer(JSON.stringify({ type: "ping", pad: "x".repeat(20_000) }))).toMatchObject({ type: "error", code: "FRAME_TOO_LARGE" });
      expect(await answer(Buffer.from([1, 2, 3]))).toMatchObject({ type: "error", code: "INVALID_FRAME" });
      expect(await answer(JSON.stringify({ type: "ping" }))).toMatchObject({ type: "pong", timestamp: expect.any(String) });
      expect(await answer(JSON.stringify({ type: "subscribe" }))).toMatchObject({ type: "subscribed" });

      c.ws.send(JSON.stringify({ type: "ping", pad: "x".repeat(70 * 1024) }));
      expect((await closedWithin(c, 5_000)).code).toBe(1009);
    });

    it("drops frames past the rate with one RATE_LIMITED error, and takes frames again later", async () => {
      const c = await open(a.key.key);
      for (let i = 0; i < 60; i++) c.send({ type: "ping" });
      await c.next((f) => f.type === "error" && f.code === "RATE_LIMITED");
      const pongs = c.frames.filter((f) => f.type === "pong").length;
      // The burst is cut at the rate (20 a second), with one error for it, not one per frame.
      expect(pongs).toBeGreaterThanOrEqual(20);
      expect(pongs).toBeLessThan(30);
      // Once the second has passed, a ping is answered again.
      await waitFor(
        async () => {
          c.send({ type: "ping" });
          return c
            .next((f) => f.type === "pong", 300)
            .then(
              () => true,
              () => false,
            );
        },
        { timeoutMs: 5_000, what: "a ping answered after the burst" },
      );
      expect(c.frames.filter((f) => f.type === "error" && f.code === "RATE_LIMITED").length).toBeLessThanOrEqual(2);
      c.close();
    });
  });

  describe("resume", () => {
    it("replays what a client missed, each once and in order, then goes live with no gap while events keep coming", async () => {
      const scope = at(a.workspace.id, i1.id);
      const first = await open(i1.apiKey);
      await subscribe(first);
      const seen = [await feed.publish(scope), await feed.publish(scope)];
      await eventNamed(first, seen[1]!.eventId);
      first.ws.terminate();

      const missed: FeedEvent[] = [];
      for (let i = 0; i < 5; i++) {
        missed.push(await feed.publish(scope));
        await feed.publish(at(a.workspace.id, i2.id)); // not this client's
      }
      const again = await open(i1.apiKey);
      // Events keep being published while the client resumes: the replay and the live
      // stream must meet without a gap or a repeat.
      const during: Promise<FeedEvent>[] = [];
      const publishing = (async () => {
        for (let i = 0; i < 30; i++) during.push(feed.publish(scope));
      })();
      expect(await subscribe(again, { last_event_id: seen[1]!.eventId })).toMatchObject({ type: "subscribed", last_event_id: seen[1]!.eventId });
      await publishing;
      const live = await Promise.all(during);
      const after = await feed.publish(scope);
      await eventNamed(again, after.eventId);
      const want = [...missed, ...live, after].map((e) => e.eventId);
      expect(eventIds(again)).toEqual(want);
      expect(again.frames.some((f) => f.type === "error")).toBe(false);
      again.close();
    });

    it("resumes the per-inbox path from ?last_event_id= as it opens: what was missed, then live, each once and in order", async () => {
      const scope = at(a.workspace.id, i2.id);
      const seen = await feed.publish(scope);
      const missed = [await feed.publish(scope), await feed.publish(scope)];
      const c = await WsClient.open(`${wsUrl(s, `/v1/inboxes/${i2.id}/ws`)}?last_event_id=${seen.eventId}`, { "X-API-Key": a.key.key });
      clients.push(c);
      expect(await c.next((f) => f.type === "subscribed" || f.type === "error")).toMatchObject({ type: "subscribed", last_event_id: seen.eventId });
      const live = await feed.publish(scope);
      await eventNamed(c, live.eventId);
      expect(eventIds(c)).toEqual([...missed, live].map((e) => e.eventId));
      c.close();
      // Not an event id: refused before the upgrade.
      const refused = await WsClient.open(`${wsUrl(s, `/v1/inboxes/${i2.id}/ws`)}?last_event_id=nope`, { "X-API-Key": a.key.key }).catch((e: unknown) => e);
      expect(refused).toMatchObject({ status: 400, body: { code: "VALIDATION_ERROR" } });
    });

    it("takes three resumes at once, refuses the fourth with RATE_LIMITED, and still takes a subscribe without one", async () => {
      const scope = at(w2, i3.id);
      const from = await feed.publish(scope);
      const c = await open(a.key.key);
      for (let i = 0; i < 3; i++) {
        expect(await subscribe(c, { workspace_ids: [w2], last_event_id: from.eventId })).toMatchObject({ type: "subscribed", last_event_id: from.eventId });
      }
      const refused = await subscribe(c, { workspace_ids: [w2], last_event_id: from.eventId });
      expect(refused).toMatchObject({ type: "error", code: "RATE_LIMITED", message: expect.stringMatching(/resumes/) });
      // Only the resume is budgeted: a subscribe from now on goes through, and live events follow.
      expect(await subscribe(c, { workspace_ids: [w2] })).toMatchObject({ type: "subscribed" });
      const live = await feed.publish(scope);
      await eventNamed(c, live.eventId);
      c.close();
    });

    it("finishes a replay when a subscribe frame sent during it is refused", async () => {
      const scope = at(a.workspace.id, i2.id);
      const events: FeedEvent[] = [];
      for (let i = 0; i < 200; i++) events.push(await feed.publish(scope));
      const c = await open(a.key.key);
      c.send({ type: "subscribe", inbox_ids: [i2.id], last_event_id: events[0]!.eventId });
      c.send({ type: "subscribe", inbox_ids: [iB.id] });
      expect(await c.next((f) => f.type === "subscribed")).toMatchObject({ inbox_ids: [i2.id] });
      expect(await c.next((f) => f.type === "error")).toMatchObject({ code: "NOT_FOUND" });
      const live = await feed.publish(scope);
      await eventNamed(c, live.eventId);
      expect(eventIds(c)).toEqual([...events.slice(1), live].map((e) => e.eventId));
      c.close();
    });

    it("says RESUME_TOO_OLD for an id older than the feed, RESUME_UNKNOWN_EVENT for one it never had, then goes live", async () => {
      const scope = at(w2, i3.id);
      await feed.publish(scope);
      for (const [lastEventId, code] of [
        [`evt_${uuidv7(Date.now() - 7 * 86_400_000)}`, "RESUME_TOO_OLD"],
        [`evt_${uuidv7()}`, "RESUME_UNKNOWN_EVENT"],
      ] as const) {
        const c = await open(a.key.key);
        expect(await subscribe(c, { workspace_ids: [w2], last_event_id: lastEventId })).toMatchObject({ type: "subscribed" });
        expect(await c.next((f) => f.type === "error")).toMatchObject({ type: "error", code });
        const live = await feed.publish(scope);
        await eventNamed(c, live.eventId);
        expect(eventIds(c)).toEqual([live.eventId]);
        c.close();
      }
    });
  });

  describe("revocation and deletion", () => {
    it("closes a key's connections with 4001 within a bounded wait once it is revoked", async () => {
      const key = (await s.api("POST", `/v1/workspaces/${a.workspace.id}/keys`, { key: a.key.key, body: { name: "short" } })).body;
      const c = await open(key.key);
      await subscribe(c);
      const bystander = await open(wk.key);
      expect((await s.api("DELETE", `/v1/workspaces/${a.workspace.id}/keys/${key.id}`, { key: a.key.key })).status).toBe(200);
      expect((await closedWithin(c, 5_000)).code).toBe(WsClose.revoked);
      // Another key of the same workspace is not touched.
      bystander.send({ type: "ping" });
      await bystander.next((f) => f.type === "pong");
      bystander.close();
    });

    it("closes every connection of a deleted workspace (its keys', and the per-inbox path to its inboxes)", async () => {
      const w = (await s.api("POST", "/v1/workspaces", { key: a.key.key, body: { name: "Doomed" } })).body.id;
      const key = (await s.api("POST", `/v1/workspaces/${w}/keys`, { key: a.key.key, body: {} })).body;
      const doomed = await inbox(a.key.key, "doomed", w);
      const byKey = await open(key.key);
      const byAgent = await open(doomed.apiKey);
      const byPath = await open(a.key.key, { path: `/v1/inboxes/${doomed.id}/ws` });
      await byPath.next((f) => f.type === "subscribed");
      const tenantWide = await open(a.key.key);
      expect((await s.api("DELETE", `/v1/workspaces/${w}`, { key: a.key.key })).status).toBe(200);
      for (const c of [byKey, byAgent, byPath]) expect((await closedWithin(c, 5_000)).code).toBe(WsClose.revoked);
      tenantWide.send({ type: "ping" });
      await tenantWide.next((f) => f.type === "pong");
      tenantWide.close();
    });

    it("closes an inbox key's connections and the per-inbox path once the inbox is deleted", async () => {
      const gone = await inbox(a.key.key, "ephemeral");
      const byAgent = await open(gone.apiKey);
      const byPath = await open(a.key.key, { path: `/v1/inboxes/${gone.id}/ws` });
      await byPath.next((f) => f.type === "subscribed");
      expect((await s.api("DELETE", `/v1/inboxes/${gone.id}`, { key: a.key.key })).status).toBe(200);
      for (const c of [byAgent, byPath]) expect((await closedWithin(c, 5_000)).code).toBe(WsClose.revoked);
    });
  });

  it("spreads clients over both replicas and gives each client each event exactly once", async () => {
    const tenant = await provisionTenant(s, "Spread");
    const many: WsClient[] = [];
    // The queue group picks the replica: open clients until both hold some (bounded).
    while (many.length < 8 || connectionsOf(s, tenant.tenant.id).some((n) => n === 0)) {
      expect(many.length).toBeLessThan(60);
      const c = await open(tenant.key.key);
      await subscribe(c);
      many.push(c);
    }
    await waitFor(() => connectionsOf(s, tenant.tenant.id).reduce((x, y) => x + y, 0) === many.length, { what: "every client counted once" });
    const scope = at(tenant.workspace.id, null, tenant.tenant.id);
    const events: FeedEvent[] = [];
    for (let i = 0; i < 10; i++) events.push(await feed.publish(scope));
    for (const c of many) await eventNamed(c, events.at(-1)!.eventId);
    for (const c of many) expect(eventIds(c)).toEqual(events.map((e) => e.eventId));
    for (const c of many) c.close();
    await waitFor(() => connectionsOf(s, tenant.tenant.id).every((n) => n === 0), { what: "the closed clients gone from both replicas" });
  });
});
