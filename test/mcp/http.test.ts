import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GatewayService } from "@mam/gateway/service.ts";
import { Client, StreamableHTTPClientTransport } from "@mam/mcp/client.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { mailToolsTests, startWorld, stopWorld, type World } from "./mail-tools.ts";

const endpoint = (g: GatewayService) => new URL(`http://127.0.0.1:${g.port}/v1/mcp`);

async function connectTo(g: GatewayService, headers: Record<string, string>): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(endpoint(g), { requestInit: { headers } });
  const client = new Client({ name: "http-test", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}

/** A bare MCP request, to see the HTTP answers themselves. */
function post(g: GatewayService, body: object | object[], headers: Record<string, string>) {
  return fetch(endpoint(g), {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: JSON.stringify(body),
  });
}
const initialize = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
};
const listTools = { jsonrpc: "2.0", id: 2, method: "tools/list", params: {} };
const callListInboxes = { jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "list_inboxes", arguments: {} } };
const inSession = (key: string, sid: string) => ({ "x-api-key": key, "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18" });

/** The gateway's MCP endpoint, through the Stack's gateway as any API client reaches it. */
describe("MCP over streamable HTTP", () => {
  let world: World;
  /** Beside the first gateway: one that lets a key hold 2 sessions, one whose sessions expire after a second idle. */
  let bounded: GatewayService;
  let shortLived: GatewayService;
  /** One that lets a key make 2 requests a minute. */
  let tight: GatewayService;
  /** One session per key, expiring after a second idle; one that answers a request within half a second. */
  let single: GatewayService;
  let hurried: GatewayService;
  /** One that lets a tenant's keys hold 2 sessions together. */
  let crowded: GatewayService;

  /**
   * Makes the mailbox slow for real: its messages table locked, so that reading messages
   * waits until `release`.
   */
  const holdMessages = async (): Promise<{ waited: () => Promise<void>; release: () => Promise<void> }> => {
    const table = `"${world.s.iso.schema("mailbox")}".messages`;
    const db = new pg.Client({ connectionString: world.s.iso.urls.DATABASE_URL });
    await db.connect();
    await db.query("BEGIN");
    await db.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
    const watcher = new pg.Client({ connectionString: world.s.iso.urls.DATABASE_URL });
    await watcher.connect();
    return {
      /** Until the mailbox waits for the table: the tool call has reached it. */
      waited: () =>
        waitFor(
          async () => (await watcher.query("SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND relation = $1::regclass", [table])).rows[0].n > 0,
          { timeoutMs: 10_000, what: "the mailbox waiting for its messages table" },
        ),
      release: async () => {
        await watcher.end();
        await db.query("ROLLBACK");
        await db.end();
      },
    };
  };
  const callListMessages = { jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "list_messages", arguments: {} } };

  /** A key of its own, for a test that spends its rate or its sessions. */
  const freshKey = async (): Promise<{ key: string; revoke: () => Promise<void> }> => {
    const tk = world.tenantKey;
    const ws = (await world.s.api("GET", "/v1/workspaces", { key: tk })).body.workspaces[0].id;
    const issued = (await world.s.api("POST", `/v1/workspaces/${ws}/keys`, { key: tk, body: {} })).body;
    return {
      key: issued.key,
      revoke: async () => {
        expect((await world.s.api("DELETE", `/v1/workspaces/${ws}/keys/${issued.id}`, { key: tk })).status).toBe(200);
      },
    };
  };

  const gatewayWith = (env: Record<string, string>): Promise<GatewayService> => world.s.startGateway(env);

  beforeAll(async () => {
    world = await startWorld();
    bounded = await gatewayWith({ MCP_MAX_SESSIONS_PER_KEY: "2" });
    shortLived = await gatewayWith({ MCP_SESSION_IDLE_S: "1" });
    tight = await gatewayWith({ RATE_LIMIT_MAX: "2", TENANT_RATE_LIMIT_MAX: "10000" });
    single = await gatewayWith({ MCP_MAX_SESSIONS_PER_KEY: "1", MCP_SESSION_IDLE_S: "1" });
    hurried = await gatewayWith({ MCP_REQUEST_TIMEOUT_S: "0.5" });
    crowded = await gatewayWith({ MCP_MAX_SESSIONS_PER_TENANT: "2" });
  });
  afterAll(async () => {
    await stopWorld(world);
  });

  describe("tools", () => {
    mailToolsTests(
      () => world,
      async (key) => (await connectTo(world.s.gateways[0]!, { "x-api-key": key })).client,
    );
  });

  describe("sessions", () => {
    it("takes the API's key headers; without a key, or with a revoked one, refuses with { error, code }", async () => {
      const g = world.s.gateways[0]!;
      const noKey = await post(g, initialize, {});
      expect(noKey.status).toBe(401);
      expect(await noKey.json()).toEqual({ error: expect.any(String), code: "UNAUTHORIZED" });

      const { client } = await connectTo(g, { authorization: `Bearer ${world.a.apiKey}` });
      expect((await client.callTool({ name: "list_inboxes", arguments: {} })).structuredContent).toMatchObject({ inboxes: [{ id: world.a.id }] });
      await client.close();

      // A workspace key, revoked while its session is open: the session's next call is refused.
      const tk = world.tenantKey;
      const ws = (await world.s.api("GET", "/v1/workspaces", { key: tk })).body.workspaces[0].id;
      const issued = (await world.s.api("POST", `/v1/workspaces/${ws}/keys`, { key: tk, body: {} })).body;
      const wk = await connectTo(g, { "x-api-key": issued.key });
      expect((await wk.client.callTool({ name: "list_inboxes", arguments: {} })).isError).toBeFalsy();
      expect((await world.s.api("DELETE", `/v1/workspaces/${ws}/keys/${issued.id}`, { key: tk })).status).toBe(200);
      await waitFor(
        () =>
          wk.client.callTool({ name: "list_inboxes", arguments: {} }).then(
            () => false,
            (err: Error) => /401|Invalid API key/.test(err.message),
          ),
        { timeoutMs: 10_000, what: "the revoked key refused" },
      );
      await wk.client.close();
    });

    it("a session answers only the key that opened it", async () => {
      const g = world.s.gateways[0]!;
      const { client, transport } = await connectTo(g, { "x-api-key": world.a.apiKey });
      const sid = transport.sessionId!;
      expect(sid).toBeTruthy();
      for (const other of [world.b.apiKey, world.tenantKey]) {
        const r = await post(g, listTools, { "x-api-key": other, "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18" });
        expect(r.status).toBe(404);
        expect(await r.json()).toEqual({ error: expect.stringContaining("session not found"), code: "NOT_FOUND" });
      }
      const own = await post(g, listTools, { "x-api-key": world.a.apiKey, "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18" });
      expect(own.status).toBe(200);
      expect(((await own.json()) as { result: { tools: unknown[] } }).result.tools.length).toBeGreaterThan(10);
      expect((await client.listTools()).tools.length).toBeGreaterThan(10);
      await client.close();
    });

    it("a key holds a bounded number of sessions; ending one makes room, another key is not held back", async () => {
      const key = { "x-api-key": world.b.apiKey };
      const first = await connectTo(bounded, key);
      const second = await connectTo(bounded, key);
      const third = await post(bounded, initialize, key);
      expect(third.status).toBe(429);
      expect(Number(third.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(await third.json()).toEqual({ error: expect.stringContaining("2 open MCP sessions"), code: "RATE_LIMITED" });
      await expect(connectTo(bounded, key)).rejects.toThrow(/429|RATE_LIMITED/);

      const otherKey = await connectTo(bounded, { "x-api-key": world.a.apiKey });
      await otherKey.client.close();

      // DELETE ends the session: its id is unknown afterwards, and the key may open another.
      const gone = first.transport.sessionId!;
      await first.transport.terminateSession();
      const after = await post(bounded, listTools, { ...key, "mcp-session-id": gone, "mcp-protocol-version": "2025-06-18" });
      expect(after.status).toBe(404);
      const again = await connectTo(bounded, key);
      expect((await again.client.listTools()).tools.length).toBeGreaterThan(10);
      await Promise.all([first.client.close(), second.client.close(), again.client.close()]);
    });

    it("an idle session expires, and its key may open a new one", async () => {
      const key = { "x-api-key": world.b.apiKey };
      const { client, transport } = await connectTo(shortLived, key);
      expect((await client.listTools()).tools.length).toBeGreaterThan(10);
      // Longer than MCP_SESSION_IDLE_S without a request.
      await sleep(1_500);
      const r = await post(shortLived, listTools, { ...key, "mcp-session-id": transport.sessionId!, "mcp-protocol-version": "2025-06-18" });
      expect(r.status).toBe(404);
      expect(await r.json()).toMatchObject({ code: "NOT_FOUND" });
      await client.close();
      const fresh = await connectTo(shortLived, key);
      expect((await fresh.client.listTools()).tools.length).toBeGreaterThan(10);
      await fresh.client.close();
    });

    it("offers no GET stream (405), and a request without a session must be an initialize", async () => {
      const g = world.s.gateways[0]!;
      const key = { "x-api-key": world.a.apiKey };
      const get = await fetch(endpoint(g), { headers: { ...key, accept: "text/event-stream" } });
      expect(get.status).toBe(405);
      expect(get.headers.get("allow")).toBe("POST, DELETE");
      expect(await get.json()).toMatchObject({ code: "VALIDATION_ERROR" });
      const noSession = await post(g, listTools, key);
      expect(noSession.status).toBe(400);
      expect(await noSession.json()).toMatchObject({ code: "VALIDATION_ERROR" });
      const under = await fetch(new URL("/v1/mcp/other", endpoint(g)), { method: "POST", headers: key });
      expect(under.status).toBe(404);
    });
  });

  describe("limits", () => {
    it("refuses JSON-RPC batches: one request carries one call", async () => {
      const g = world.s.gateways[0]!;
      const { client, transport } = await connectTo(g, { "x-api-key": world.a.apiKey });
      const batch = await post(g, [listTools, callListInboxes], inSession(world.a.apiKey, transport.sessionId!));
      expect(batch.status).toBe(400);
      expect(await batch.json()).toEqual({ error: "JSON-RPC batches are not accepted", code: "VALIDATION_ERROR" });
      const search = await client.callTool({ name: "search_messages", arguments: { inboxId: world.a.id, query: "x", scanLimit: 501 } });
      expect(search.isError).toBe(true);
      await client.close();
    });

    it("each API call a tool makes takes from the key's rate, as a /v1 request would", async () => {
      const { key } = await freshKey();
      // Two requests a minute: the initialize, then the tool call; the tool's own API call is the third.
      const init = await post(tight, initialize, { "x-api-key": key });
      expect(init.status).toBe(200);
      const call = await post(tight, callListInboxes, inSession(key, init.headers.get("mcp-session-id")!));
      expect(call.status).toBe(200);
      const { result } = (await call.json()) as { result: { isError?: boolean; structuredContent: unknown } };
      expect(result.isError).toBe(true);
      expect(result.structuredContent).toEqual({ error: expect.stringContaining("Rate limit exceeded"), code: "RATE_LIMITED" });
    });

    it("a tool call its client cancels is answered, its session still expires, and its key may open another", async () => {
      const key = world.a.apiKey;
      const listMessages = { ...callListMessages, params: { name: "list_messages", arguments: { inboxId: world.a.id } } };
      const held = await holdMessages();
      let first: Awaited<ReturnType<typeof connectTo>> | undefined;
      try {
        // Over bare HTTP: the cancelled request's own POST gets the JSON-RPC error.
        const init = await post(single, initialize, { "x-api-key": key });
        const sid = init.headers.get("mcp-session-id")!;
        const pending = post(single, listMessages, inSession(key, sid));
        await held.waited();
        const cancel = { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: listMessages.id, reason: "gave up" } };
        expect((await post(single, cancel, inSession(key, sid))).status).toBe(202);
        const answer = await pending;
        expect(answer.status).toBe(200);
        expect(await answer.json()).toMatchObject({ id: listMessages.id, error: { code: -32800 } });
        const end = await fetch(endpoint(single), { method: "DELETE", headers: inSession(key, sid) });
        expect(end.status).toBe(200);

        // With the SDK's client: its request timeout sends the cancellation.
        first = await connectTo(single, { "x-api-key": key });
        await expect(first.client.callTool({ name: "list_messages", arguments: { inboxId: world.a.id } }, undefined, { timeout: 50 })).rejects.toThrow(
          /timed out/i,
        );
      } finally {
        await held.release();
      }
      // Longer than MCP_SESSION_IDLE_S: the one session the key may hold has expired.
      await sleep(1_500);
      const again = await connectTo(single, { "x-api-key": key });
      expect((await again.client.listTools()).tools.length).toBeGreaterThan(10);
      await Promise.all([first?.client.close(), again.client.close()]);
    });

    it("a request not answered in MCP_REQUEST_TIMEOUT_S gets 504 UNAVAILABLE, and the session goes on", async () => {
      const key = world.a.apiKey;
      const init = await post(hurried, initialize, { "x-api-key": key });
      const sid = init.headers.get("mcp-session-id")!;
      const held = await holdMessages();
      try {
        const late = await post(hurried, { ...callListMessages, params: { name: "list_messages", arguments: { inboxId: world.a.id } } }, inSession(key, sid));
        expect(late.status).toBe(504);
        expect(await late.json()).toEqual({ error: expect.stringContaining("not answered within 0.5 s"), code: "UNAVAILABLE" });
      } finally {
        await held.release();
      }
      const next = await post(hurried, listTools, inSession(key, sid));
      expect(next.status).toBe(200);
    });

    it("a gateway stopping ends the MCP requests under way (503) instead of waiting for them", async () => {
      const g = await gatewayWith({});
      const key = world.a.apiKey;
      const init = await post(g, initialize, { "x-api-key": key });
      const sid = init.headers.get("mcp-session-id")!;
      const held = await holdMessages();
      try {
        const pending = post(g, { ...callListMessages, params: { name: "list_messages", arguments: { inboxId: world.a.id } } }, inSession(key, sid));
        await held.waited();
        await g.destroy();
        const r = await pending;
        expect(r.status).toBe(503);
        expect(await r.json()).toMatchObject({ code: "UNAVAILABLE" });
      } finally {
        await held.release();
      }
    });

    it("a tenant's keys hold a bounded number of sessions together; a revoked key's sessions close at once", async () => {
      const revoked = await freshKey();
      const first = await connectTo(crowded, { "x-api-key": revoked.key });
      const second = await connectTo(crowded, { "x-api-key": world.a.apiKey });
      const third = await post(crowded, initialize, { "x-api-key": world.b.apiKey });
      expect(third.status).toBe(429);
      expect(await third.json()).toEqual({ error: expect.stringContaining("tenant's keys have 2 open MCP sessions"), code: "RATE_LIMITED" });
      // Another tenant is not held back.
      const other = await connectTo(crowded, { "x-api-key": world.c.apiKey });
      await other.transport.terminateSession();

      // The revoked key's session goes when the gateway hears of it, not when it idles out (30 minutes).
      await revoked.revoke();
      await waitFor(async () => (await post(crowded, initialize, { "x-api-key": world.b.apiKey })).status === 200, {
        timeoutMs: 10_000,
        what: "room for the tenant once the revoked key's session closed",
      });
      await Promise.all([first.client.close(), second.client.close(), other.client.close()]);
    });

    it("is counted in the HTTP metrics under its route, not as unmatched", async () => {
      const g = world.s.gateways[0]!;
      const { client } = await connectTo(g, { "x-api-key": world.a.apiKey });
      await client.listTools();
      await client.close();
      const exposition = await g.backbone.metrics.exposition();
      expect(exposition).toMatch(/mam_http_requests_total\{method="POST",route="\/v1\/mcp",status="200"\} [1-9]/);
    });
  });
});
