import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiResponse } from "@mam/testing/http.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

describe("the HTTP edge", () => {
  const s = new Stack({ gatewayEnv: { RATE_LIMIT_MAX: "1000", BODY_LIMIT_BYTES: "2048" } });
  const limited = new Stack({ gatewayEnv: { RATE_LIMIT_MAX: "3", RATE_LIMIT_WINDOW_S: "60" }, logLevel: "warn" });
  let tk: string;

  beforeAll(async () => {
    await Promise.all([s.start(), limited.start()]);
    tk = (await provisionTenant(s)).key.key;
  });
  afterAll(() => Promise.all([s.stop(), limited.stop()]));

  it("missing, unknown and malformed keys get 401 { error, code }", async () => {
    // Unknown but well formed (looked up), then missing or malformed (refused without a lookup).
    for (const key of [`tk_doesnotexistdoesnotexist${"0".repeat(19)}`, undefined, "tk_doesnotexistdoesnotexist0000000000000000", "not-a-key", "tk_"]) {
      const r = await s.api("GET", "/v1/workspaces", { key });
      expect(r.status).toBe(401);
      expect(r.body).toEqual({ error: expect.any(String), code: "UNAUTHORIZED" });
    }
  });

  it("accepts the key as Authorization: Bearer too", async () => {
    expect((await s.api("GET", "/v1/workspaces", { key: tk, bearer: true })).status).toBe(200);
  });

  it("malformed JSON is a 400", async () => {
    const r = await s.api("POST", "/v1/workspaces", { key: tk, raw: '{"name": "Acme' });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe("VALIDATION_ERROR");
  });

  it("schema violations are 400 VALIDATION_ERROR naming the fields", async () => {
    const r = await s.api("POST", "/v1/workspaces", { key: tk, body: { name: "", slug: "Not A Slug" } });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe("VALIDATION_ERROR");
    expect(r.body.fields.map((f: { path: string }) => f.path).sort()).toEqual(["name", "slug"]);
    expect(r.body.error).toContain("slug");
    const noBody = await s.api("POST", "/v1/workspaces", { key: tk });
    expect(noBody.status).toBe(400);
    expect(noBody.body.fields[0].path).toBe("name");
    const badId = await s.api("GET", "/v1/workspaces/not-a-uuid", { key: tk });
    expect(badId.status).toBe(400);
    const ctl = await s.api("POST", "/v1/workspaces", { key: tk, body: { name: "Evil\r\nX-Injected: 1" } });
    expect(ctl.status).toBe(400);
  });

  it("bodies over the limit are 413, and nothing is created", async () => {
    const before = (await s.api("GET", "/v1/workspaces", { key: tk })).body.workspaces.length;
    const r = await s.api("POST", "/v1/workspaces", { key: tk, body: { name: "x".repeat(4096) } });
    expect(r.status).toBe(413);
    expect(r.body.code).toBe("PAYLOAD_TOO_LARGE");
    expect((await s.api("GET", "/v1/workspaces", { key: tk })).body.workspaces.length).toBe(before);
  });

  it("unknown routes are 404 JSON", async () => {
    for (const [m, p] of [
      ["GET", "/v1/nothing-here"],
      ["PATCH", "/v1/workspaces"],
      ["GET", "/"],
    ] as const) {
      const r = await s.api(m, p, { key: tk });
      expect(r.status).toBe(404);
      expect(r.body.code).toBe("NOT_FOUND");
    }
  });

  it("over the per-key rate limit: 429 with Retry-After; other keys are unaffected", async () => {
    const t = await provisionTenant(limited);
    const statuses: number[] = [];
    let last: ApiResponse | undefined;
    for (let i = 0; i < 5; i++) {
      last = await limited.api("GET", "/v1/me", { key: t.key.key });
      statuses.push(last.status);
    }
    // One request of the budget went to creating the tenant under the operator key, not this one.
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(last!.body.code).toBe("RATE_LIMITED");
    expect([last!.headers.get("x-ratelimit-scope"), last!.headers.get("x-ratelimit-limit"), last!.headers.get("x-ratelimit-remaining")]).toEqual([
      "key",
      "3",
      "0",
    ]);
    const retry = Number(last!.headers.get("retry-after"));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    const other = await provisionTenant(limited, "Other");
    expect((await limited.api("GET", "/v1/me", { key: other.key.key })).status).toBe(200);
  });

  it("health and readiness", async () => {
    expect((await s.api("GET", "/healthz")).status).toBe(200);
    const ready = await s.api("GET", "/readyz");
    expect(ready.body).toEqual({ status: "ready", checks: { nats: true, serving: true, redis: true } });
    const id = await s.identity.readiness();
    expect(id).toEqual({ nats: true, postgres: true, readModel: true, serving: true });
  });

  it("a request id follows the request across services; no key or secret reaches a log", async () => {
    const requestId = "req-trace-12345";
    const r = await s.api("POST", "/v1/workspaces", { key: tk, body: { name: "Traced" }, headers: { "x-request-id": requestId } });
    expect(r.headers.get("x-request-id")).toBe(requestId);
    const k = await s.api("POST", `/v1/workspaces/${r.body.id}/keys`, { key: tk, body: {} });
    const generated = (await s.api("GET", "/v1/me", { key: k.body.key })).headers.get("x-request-id");
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);

    const traced = s.logs.entries().filter((e) => e.requestId === requestId);
    expect(new Set(traced.map((e) => e.service))).toEqual(new Set(["gateway", "identity"]));
    const text = s.logs.text();
    for (const secret of [tk, k.body.key, s.operatorKey]) expect(text).not.toContain(secret);
    expect(text).not.toMatch(/[0-9a-f]{64}/); // no key hash either
  });
});

describe("when identity is not running", () => {
  const s = new Stack({ logLevel: "silent" });
  beforeAll(async () => {
    await s.startGateway();
    s.api = s.client(0);
  });
  afterAll(() => s.stop());

  it("the gateway answers 503 with Retry-After, in the public error shape", async () => {
    const r = await s.api("GET", "/v1/me", { key: `tk_${"a".repeat(43)}` });
    expect(r.status).toBe(503);
    expect(r.body).toEqual({ error: expect.any(String), code: "UNAVAILABLE" });
    expect(r.headers.get("retry-after")).toBe("2");
  });
});
