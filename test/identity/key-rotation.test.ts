import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { hashKey } from "@mam/scope/key-hash.ts";
import { replyOf } from "@mam/testing/contract-reply.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

const I = RpcContracts.identity;
const UNKNOWN = "01900000-0000-7000-8000-0000000000ff";

/** tk_ keys rotated, re-issued and revoked over HTTP, with two gateway instances that both had the old key cached. */
describe("rotating and revoking tk_ keys", () => {
  const s = new Stack({ gateways: 2, mailbox: false });
  let acme: Awaited<ReturnType<typeof provisionTenant>>;
  let other: Awaited<ReturnType<typeof provisionTenant>>;

  beforeAll(async () => {
    await s.start();
    acme = await provisionTenant(s, "Acme");
    other = await provisionTenant(s, "Other");
  });
  afterAll(() => s.stop());

  const me = (i: number, key: string) => s.client(i)("GET", "/v1/me", { key });
  /** Each gateway has resolved (and cached) the key. */
  async function cachedOnBoth(key: string) {
    for (const i of [0, 1]) expect((await me(i, key)).status).toBe(200);
  }
  /** Each gateway refuses the key, within a generous bound (its revocation travels as an event). */
  async function refusedOnBoth(key: string) {
    for (const i of [0, 1]) {
      await waitFor(async () => (await me(i, key)).status === 401, { timeoutMs: 2_000, what: `gateway ${i} refusing the revoked key` });
    }
  }

  it("a tk_ key rotates itself: a new key shown once, and the old one dies on every gateway", async () => {
    const old = acme.key;
    await cachedOnBoth(old.key);
    const r = await s.api("POST", "/v1/tenant/keys/rotate", { key: old.key });
    const fresh = replyOf(I.tenantKeyRotate, r, 201);
    expect(fresh).toEqual({
      id: expect.any(String),
      key: expect.stringMatching(/^tk_[A-Za-z0-9_-]{43}$/),
      prefix: fresh.key.slice(0, 9),
      createdAt: expect.any(String),
    });
    expect(fresh.id).not.toBe(old.id);

    await refusedOnBoth(old.key);
    acme.key = { ...acme.key, id: fresh.id, key: fresh.key };
    for (const i of [0, 1]) expect((await me(i, fresh.key)).body).toEqual({ keyId: fresh.id, kind: "tenant", tenantId: acme.tenant.id });
    expect((await s.api("GET", "/v1/workspaces", { key: fresh.key })).body.workspaces.map((w: { id: string }) => w.id)).toEqual([acme.workspace.id]);
    // The old key cannot rotate again (nor do anything else).
    expect((await s.api("POST", "/v1/tenant/keys/rotate", { key: old.key })).body).toEqual({ error: "Invalid API key", code: "UNAUTHORIZED" });
  });

  it("stores the new key hashed: its plaintext is in the answer and nowhere in the database", async () => {
    const r = replyOf(I.tenantKeyRotate, await s.api("POST", "/v1/tenant/keys/rotate", { key: acme.key.key }), 201);
    await refusedOnBoth(acme.key.key);
    acme.key = { ...acme.key, id: r.id, key: r.key };
    const db = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await db.connect();
    try {
      const rows = (await db.query(`SELECT * FROM ${s.iso.schema("identity")}.api_keys WHERE key_id = $1`, [r.id])).rows;
      expect(rows).toHaveLength(1);
      expect(rows[0].key_hash).toBe(hashKey(r.key));
      expect(JSON.stringify(rows)).not.toContain(r.key);
    } finally {
      await db.end();
    }
  });

  it("the operator revokes every tk_ key of a tenant and re-issues one, shown once", async () => {
    await cachedOnBoth(acme.key.key);
    const r = await s.api("POST", `/v1/tenants/${acme.tenant.id}/keys/rotate`, { key: s.operatorKey });
    const fresh = replyOf(I.tenantKeyReissue, r, 201);
    expect(fresh.key).toMatch(/^tk_/);
    await refusedOnBoth(acme.key.key);
    acme.key = { ...acme.key, id: fresh.id, key: fresh.key };
    for (const i of [0, 1]) expect((await me(i, fresh.key)).body).toMatchObject({ keyId: fresh.id, tenantId: acme.tenant.id });
  });

  it("the operator revokes one tk_ key; revoking it again answers the same", async () => {
    const spare = replyOf(I.tenantKeyReissue, await s.api("POST", `/v1/tenants/${other.tenant.id}/keys/rotate`, { key: s.operatorKey }), 201);
    await refusedOnBoth(other.key.key);
    await cachedOnBoth(spare.key);
    const r = await s.api("DELETE", `/v1/tenants/${other.tenant.id}/keys/${spare.id}`, { key: s.operatorKey });
    expect(replyOf(I.tenantKeyRevoke, r, 200)).toEqual({ revoked: true, id: spare.id });
    await refusedOnBoth(spare.key);
    expect((await s.api("DELETE", `/v1/tenants/${other.tenant.id}/keys/${spare.id}`, { key: s.operatorKey })).body).toEqual({ revoked: true, id: spare.id });
    // A tenant left without a key gets one back by the operator's re-issue.
    const back = replyOf(I.tenantKeyReissue, await s.api("POST", `/v1/tenants/${other.tenant.id}/keys/rotate`, { key: s.operatorKey }), 201);
    expect((await me(1, back.key)).status).toBe(200);
    other.key = { ...other.key, id: back.id, key: back.key };
  });

  it("answers an unknown tenant, or a key that is not one of the tenant's tk_ keys, with 404", async () => {
    const op = { key: s.operatorKey };
    expect((await s.api("POST", `/v1/tenants/${UNKNOWN}/keys/rotate`, op)).body).toEqual({ error: "Tenant not found", code: "NOT_FOUND" });
    expect((await s.api("DELETE", `/v1/tenants/${UNKNOWN}/keys/${acme.key.id}`, op)).body).toEqual({ error: "Tenant not found", code: "NOT_FOUND" });
    expect((await s.api("DELETE", `/v1/tenants/${other.tenant.id}/keys/${acme.key.id}`, op)).body).toEqual({ error: "Key not found", code: "NOT_FOUND" });
    expect((await s.api("POST", "/v1/tenants/not-a-uuid/keys/rotate", op)).status).toBe(400);
  });

  it("a tk_ key cannot rotate or revoke another tenant's keys (404), and theirs keep working", async () => {
    const r1 = await s.api("POST", `/v1/tenants/${acme.tenant.id}/keys/rotate`, { key: other.key.key });
    expect(r1).toMatchObject({ status: 404, body: { error: "Tenant not found", code: "NOT_FOUND" } });
    const r2 = await s.api("DELETE", `/v1/tenants/${acme.tenant.id}/keys/${acme.key.id}`, { key: other.key.key });
    expect(r2).toMatchObject({ status: 404, body: { error: "Tenant not found", code: "NOT_FOUND" } });
    for (const i of [0, 1]) expect((await me(i, acme.key.key)).status).toBe(200);
  });

  it("only a tk_ key rotates itself", async () => {
    const wk = (await s.api("POST", `/v1/workspaces/${acme.workspace.id}/keys`, { key: acme.key.key, body: {} })).body;
    expect((await s.api("POST", "/v1/tenant/keys/rotate", { key: wk.key })).status).toBe(403);
    expect((await s.api("POST", "/v1/tenant/keys/rotate", { key: s.operatorKey })).status).toBe(403);
    // Nor may a wk_ key reach its tenant's tk_ keys.
    expect((await s.api("POST", `/v1/tenants/${acme.tenant.id}/keys/rotate`, { key: wk.key })).status).toBe(404);
    expect((await me(0, acme.key.key)).status).toBe(200);
  });
});
