import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { request as httpRequest, type ClientRequest } from "node:http";
import { connect as tcpConnect } from "node:net";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { rpcSubject } from "@mam/contracts/subjects.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import type { ApiResponse } from "@mam/testing/http.ts";
import { freePort } from "@mam/testing/processes.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/** A key of the right shape that no one issued. */
const guessedKey = () => `wk_${randomBytes(32).toString("base64url")}`;

async function newKeyOf(s: Stack, tenantKey: string, workspaceId: string): Promise<string> {
  const r = await s.api("POST", `/v1/workspaces/${workspaceId}/keys`, { key: tenantKey, body: {} });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.key;
}

async function newWorkspace(s: Stack, tenantKey: string, name = "W"): Promise<string> {
  const r = await s.api("POST", "/v1/workspaces", { key: tenantKey, body: { name } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id;
}

function expectRefused(r: ApiResponse, scope: string, limit: number) {
  expect(r.status).toBe(429);
  expect(r.body.code).toBe("RATE_LIMITED");
  expect(r.headers.get("x-ratelimit-scope")).toBe(scope);
  expect(r.headers.get("x-ratelimit-limit")).toBe(String(limit));
  expect(r.headers.get("x-ratelimit-remaining")).toBe("0");
  expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
}

describe("rate limits per tenant", () => {
  // A window long enough that none ends while the test runs (a window starts with its first request).
  const s = new Stack({
    mailbox: false,
    logLevel: "warn",
    gatewayEnv: { RATE_LIMIT_MAX: "6", TENANT_RATE_LIMIT_MAX: "10", RATE_LIMIT_WINDOW_S: "3600" },
  });
  beforeAll(() => s.start());
  afterAll(() => s.stop());

  it("a tenant cannot pass its limit by spreading requests over many keys; the operator and other tenants are unaffected", async () => {
    const t = await provisionTenant(s, "Many keys");
    const tk = t.key.key;
    const ws = await newWorkspace(s, tk);
    const keys: string[] = [];
    for (let i = 0; i < 4; i++) keys.push(await newKeyOf(s, tk, ws));
    // Five requests of the tenant's ten went to setting up; its four keys could make 24 by their own limits.
    const responses: ApiResponse[] = [];
    for (let round = 0; round < 6; round++) {
      for (const key of keys) responses.push(await s.api("GET", "/v1/me", { key }));
    }
    expect(responses.filter((r) => r.status === 200)).toHaveLength(5);
    const refused = responses.filter((r) => r.status !== 200);
    expect(refused).toHaveLength(19);
    for (const r of refused) expectRefused(r, "tenant", 10);
    expect(Number(refused[0]!.headers.get("retry-after"))).toBeLessThanOrEqual(3600);
    // The tenant key too: its own window has room left (5 of 6), the tenant's has none.
    expectRefused(await s.api("GET", "/v1/me", { key: tk }), "tenant", 10);

    const ok = await s.api("GET", "/v1/me", { key: s.operatorKey });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-ratelimit-scope")).toBe("key");
    const other = await provisionTenant(s, "Other");
    const fresh = await s.api("GET", "/v1/me", { key: other.key.key });
    expect(fresh.status).toBe(200);
    // Admitted requests describe the window closest to refusing: the key's here (5 left, the tenant's 9).
    expect([fresh.headers.get("x-ratelimit-scope"), fresh.headers.get("x-ratelimit-remaining")]).toEqual(["key", "5"]);
  });
});

describe("unknown keys, per client address", () => {
  const s = new Stack({
    mailbox: false,
    logLevel: "warn",
    // A proxy on loopback tells the client address, so the test can speak from several.
    gatewayEnv: { UNAUTHENTICATED_RATE_LIMIT_MAX: "3", RATE_LIMIT_WINDOW_S: "3600", TRUST_PROXY: "loopback", KEY_CACHE_TTL_S: "1" },
  });
  let nc: NatsConnection;
  let lookups = 0;
  /** key.resolve requests identity has been sent so far: every one published before this call is counted. */
  const lookupsSoFar = async () => {
    await nc.flush();
    return lookups;
  };
  const from = (address: string) => ({ "x-forwarded-for": address });

  beforeAll(async () => {
    await s.start();
    nc = await connect({ servers: s.iso.urls.NATS_URL });
    // A plain subscription beside identity's queue group: it gets a copy of every lookup.
    nc.subscribe(rpcSubject(s.iso.prefix, RpcContracts.identity.keyResolve.subject), { callback: () => void lookups++ });
    await nc.flush();
  });
  afterAll(async () => {
    await nc?.close();
    await s.stop();
  });

  it("past the limit, an address gets 429 before identity is asked; malformed keys are never looked up; known keys still work", async () => {
    const address = "203.0.113.7";
    const t = await provisionTenant(s, "Shared NAT");
    const tk = t.key.key;
    expect((await s.api("GET", "/v1/me", { key: tk, headers: from(address) })).status).toBe(200);
    const ws = await newWorkspace(s, tk);
    const neverSeen = await newKeyOf(s, tk, ws);

    const before = await lookupsSoFar();
    for (const bad of ["tk_short", `xx_${"a".repeat(43)}`, `wk_${"a".repeat(44)}`, `sa_${"a".repeat(21)}`, "not-a-key", `wk_${"a".repeat(42)}!`]) {
      const r = await s.api("GET", "/v1/me", { key: bad, headers: from(address) });
      expect(r.status).toBe(401);
      expect(r.body.code).toBe("UNAUTHORIZED");
    }
    expect(await lookupsSoFar()).toBe(before);

    // Malformed keys did not count: the address still has its three lookups.
    for (let i = 1; i <= 3; i++) {
      const r = await s.api("GET", "/v1/me", { key: guessedKey(), headers: from(address) });
      expect(r.status).toBe(401);
      expect(await lookupsSoFar()).toBe(before + i);
    }
    const refused = await s.api("GET", "/v1/me", { key: guessedKey(), headers: from(address) });
    expectRefused(refused, "address", 3);
    expect(await lookupsSoFar()).toBe(before + 3);

    // Another address has its own count.
    expect((await s.api("GET", "/v1/me", { key: guessedKey(), headers: from("198.51.100.9") })).status).toBe(401);
    expect(await lookupsSoFar()).toBe(before + 4);

    // A key this gateway has seen resolve still works from the address, cached or not: poll
    // until its one-second cache entry has lapsed and identity was asked again.
    const lookupsNow = await lookupsSoFar();
    await waitFor(
      async () => {
        const r = await s.api("GET", "/v1/me", { key: tk, headers: from(address) });
        expect(r.status).toBe(200);
        return (await lookupsSoFar()) > lookupsNow;
      },
      { timeoutMs: 10_000, what: "the tenant key looked up again after its cache entry lapsed" },
    );
    // A valid key this gateway has never seen cannot be told from a guess without asking:
    // from this address it waits for the window, like a guess (from elsewhere it works).
    expectRefused(await s.api("GET", "/v1/me", { key: neverSeen, headers: from(address) }), "address", 3);
    expect((await s.api("GET", "/v1/me", { key: neverSeen, headers: from("198.51.100.10") })).status).toBe(200);
  });

  it("valid keys do not use up an address's allowance; guesses sent all at once cannot overshoot it", async () => {
    const tk = (await provisionTenant(s, "Busy office")).key.key;
    const ws = await newWorkspace(s, tk);
    for (let i = 0; i < 3; i++) {
      const fresh = await newKeyOf(s, tk, ws);
      expect((await s.api("GET", "/v1/me", { key: fresh, headers: from("203.0.113.50") })).status).toBe(200);
    }
    const before = await lookupsSoFar();
    const all = await Promise.all(Array.from({ length: 10 }, () => s.api("GET", "/v1/me", { key: guessedKey(), headers: from("203.0.113.50") })));
    expect(all.map((r) => r.status).sort()).toEqual([...Array(3).fill(401), ...Array(7).fill(429)]);
    expect(await lookupsSoFar()).toBe(before + 3);
  });
});

describe("the client address without TRUST_PROXY", () => {
  const s = new Stack({ mailbox: false, logLevel: "warn", gatewayEnv: { UNAUTHENTICATED_RATE_LIMIT_MAX: "2", RATE_LIMIT_WINDOW_S: "3600" } });
  beforeAll(() => s.start());
  afterAll(() => s.stop());

  it("is the connection's peer: X-Forwarded-For cannot buy a fresh count", async () => {
    for (const address of ["192.0.2.1", "192.0.2.2"]) {
      expect((await s.api("GET", "/v1/me", { key: guessedKey(), headers: { "x-forwarded-for": address } })).status).toBe(401);
    }
    expectRefused(await s.api("GET", "/v1/me", { key: guessedKey(), headers: { "x-forwarded-for": "192.0.2.3" } }), "address", 2);
  });
});

describe("large bodies per tenant", () => {
  const s = new Stack({
    mailbox: false,
    logLevel: "debug",
    gatewayEnv: { LARGE_BODIES_IN_FLIGHT: "2", LARGE_BODIES_PER_KEY: "1", LARGE_BODIES_PER_TENANT: "1" },
  });
  const held: ClientRequest[] = [];
  const size = 1_500_000;
  const port = () => s.gateways[0]!.port;

  beforeAll(() => s.start());
  afterAll(async () => {
    for (const r of held) r.destroy();
    await s.stop();
  });

  /** Starts a large upload and stops part way: it holds its slot until destroyed. */
  function hold(key: string): ClientRequest {
    const req = httpRequest({
      host: "127.0.0.1",
      port: port(),
      method: "POST",
      path: "/v1/workspaces",
      headers: { "x-api-key": key, "content-type": "application/json", "content-length": size },
    });
    req.on("error", () => {});
    req.write(Buffer.alloc(1024, 32));
    held.push(req);
    return req;
  }

  /** A whole large body to a route that answers at once: 200 if it got a slot (freed as it ends), else 429. */
  function probe(key: string): Promise<{ status: number; code?: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: "127.0.0.1",
          port: port(),
          method: "GET",
          path: "/v1/me",
          headers: { "x-api-key": key, "content-type": "application/octet-stream", "content-length": size },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode!, code: JSON.parse(Buffer.concat(chunks).toString() || "{}").code }));
        },
      );
      // The gateway may answer before reading the body and close: that is no failure of the probe.
      req.on("error", (err) => (req.writableEnded ? undefined : reject(err)));
      req.end(Buffer.alloc(size, 7));
    });
  }

  const admitted = (keyId: string) => s.logs.entries().some((e) => e.msg === "large body admitted" && e.keyId === keyId);

  it("one tenant's keys together hold at most their share of the slots; another tenant still gets one", async () => {
    const a = await provisionTenant(s, "Alpha");
    const b = await provisionTenant(s, "Beta");
    const aKey = a.key.key;
    const aOther = await newKeyOf(s, aKey, await newWorkspace(s, aKey));
    const aKeyId = (await s.api("GET", "/v1/me", { key: aKey })).body.keyId;

    const upload = hold(aKey);
    await waitFor(() => admitted(aKeyId), { what: "the first upload admitted" });
    // Alpha's other key has its own per-key room and there is a free slot in all: only the tenant cap refuses it.
    expect(await probe(aOther)).toEqual({ status: 429, code: "RATE_LIMITED" });
    expect(await probe(b.key.key)).toEqual({ status: 200, code: undefined });

    upload.destroy();
    await waitFor(async () => (await probe(aOther)).status === 200, { what: "Alpha's slot freed once its upload went away" });
  });
});

describe("when Redis goes away", () => {
  let redisPort: number;
  let redis: ChildProcess | undefined;
  let s: Stack;

  /** A Redis of this test's own, which it may kill: no persistence, so a restart starts empty. */
  async function startRedis(): Promise<void> {
    redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
    const answers = () =>
      new Promise<boolean>((resolve) => {
        const c = tcpConnect(redisPort, "127.0.0.1", () => c.end(() => resolve(true)));
        c.on("error", () => resolve(false));
      });
    await waitFor(answers, { timeoutMs: 10_000, what: "redis-server listening" });
  }
  async function stopRedis(): Promise<void> {
    if (!redis || redis.exitCode !== null) return;
    const gone = new Promise((resolve) => redis!.once("exit", resolve));
    redis.kill("SIGKILL");
    await gone;
  }
  const lines = (msg: string) => s.logs.entries().filter((e) => e.service === "gateway" && e.msg === msg).length;

  beforeAll(async () => {
    redisPort = await freePort();
    await startRedis();
    s = new Stack({
      mailbox: false,
      logLevel: "info",
      gatewayEnv: { REDIS_URL: `redis://127.0.0.1:${redisPort}`, RATE_LIMIT_MAX: "3", UNAUTHENTICATED_RATE_LIMIT_MAX: "1", RATE_LIMIT_WINDOW_S: "3600" },
    });
    await s.start();
  });
  afterAll(async () => {
    await s?.stop();
    await stopRedis();
  });

  it("requests are let through (key, tenant and address limits alike), the outage is logged once, and limits return with Redis", async () => {
    const tk = (await provisionTenant(s)).key.key;
    expect((await s.api("GET", "/v1/me", { key: tk })).headers.get("x-ratelimit-remaining")).toBe("2");
    await stopRedis();

    // Past the key's limit of 3 and the address's limit of 1, and nothing refused.
    for (let i = 0; i < 5; i++) expect((await s.api("GET", "/v1/me", { key: tk })).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await s.api("GET", "/v1/me", { key: guessedKey() })).status).toBe(401);
    expect(lines("rate limiter unavailable; allowing requests until Redis answers again")).toBe(1);

    await startRedis();
    await waitFor(async () => (await s.api("GET", "/v1/me", { key: tk })).status === 200 && lines("rate limiter available again") === 1, {
      timeoutMs: 15_000,
      what: "the rate limiter back",
    });
    // The restarted Redis is empty: this key's window began with the request that found it back.
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await s.api("GET", "/v1/me", { key: tk })).status);
    expect(statuses).toEqual([200, 200, 429]);
    // At most once: whether a reconnect attempt failed before Redis was back depends on timing.
    expect(lines("Redis unreachable; retrying quietly until it answers")).toBeLessThanOrEqual(1);
  });
});
