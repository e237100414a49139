import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/** The seed's provisioning flow, over HTTP only, with two gateway instances. */
describe("provisioning tenants, workspaces and keys", () => {
  const s = new Stack({ gateways: 2 });
  let acme: Awaited<ReturnType<typeof provisionTenant>>;
  let other: Awaited<ReturnType<typeof provisionTenant>>;
  let tk: string;
  let acmeWs: { id: string; slug: string };
  let wk: { id: string; key: string; prefix: string };

  beforeAll(async () => {
    await s.start();
    acme = await provisionTenant(s, "Reseller One");
    other = await provisionTenant(s, "Reseller Two");
    tk = acme.key.key;
  });
  afterAll(() => s.stop());

  it("creates a tenant with its Default workspace and a tk_ key shown once", async () => {
    expect(acme.key.key).toMatch(/^tk_[A-Za-z0-9_-]{43}$/);
    expect(acme.workspace).toMatchObject({ name: "Default", slug: "default", isDefault: true });
    const me = await s.api("GET", "/v1/me", { key: tk });
    expect(me.body).toEqual({ keyId: acme.key.id, kind: "tenant", tenantId: acme.tenant.id });
    const op = await s.api("GET", "/v1/me", { key: s.operatorKey });
    expect(op.body).toEqual({ keyId: expect.any(String), kind: "super_admin" });
  });

  it("only the operator key creates tenants", async () => {
    const r = await s.api("POST", "/v1/tenants", { key: tk, body: { name: "Sneaky" } });
    expect(r.status).toBe(403);
    expect(r.body.code).toBe("FORBIDDEN");
  });

  it("creates workspace Acme Corp with slug acme-corp, readable at once", async () => {
    const r = await s.api("POST", "/v1/workspaces", { key: tk, body: { name: "Acme Corp" } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ name: "Acme Corp", slug: "acme-corp", isDefault: false, inboxCount: 0, domainCount: 0 });
    acmeWs = r.body;
    const got = await s.client(1)("GET", `/v1/workspaces/${acmeWs.id}`, { key: tk });
    expect(got.body).toEqual(r.body);
  });

  it("derives a fresh slug for a repeated name and refuses a taken explicit slug", async () => {
    const again = await s.api("POST", "/v1/workspaces", { key: tk, body: { name: "Acme Corp" } });
    expect(again.body.slug).toBe("acme-corp-2");
    const taken = await s.api("POST", "/v1/workspaces", { key: tk, body: { name: "X", slug: "acme-corp" } });
    expect(taken.status).toBe(409);
    expect(taken.body.code).toBe("CONFLICT");
    // Slugs are per tenant: another tenant may use the same one.
    const elsewhere = await s.api("POST", "/v1/workspaces", { key: other.key.key, body: { name: "Acme Corp" } });
    expect(elsewhere.body.slug).toBe("acme-corp");
  });

  it("issues a wk_ key once and lists only its prefix", async () => {
    const r = await s.api("POST", `/v1/workspaces/${acmeWs.id}/keys`, { key: tk, body: { name: "Acme API key" } });
    expect(r.status).toBe(201);
    expect(r.body.key).toMatch(/^wk_[A-Za-z0-9_-]{43}$/);
    expect(r.body.prefix).toBe(r.body.key.slice(0, 9));
    wk = r.body;
    const list = await s.api("GET", `/v1/workspaces/${acmeWs.id}/keys`, { key: tk });
    expect(list.body.keys).toEqual([{ id: wk.id, prefix: wk.prefix, name: "Acme API key", workspaceId: acmeWs.id, createdAt: r.body.createdAt }]);
    expect(JSON.stringify(list.body)).not.toContain(wk.key);
  });

  it("a wk_ key sees its workspace and nothing else", async () => {
    const own = await s.api("GET", `/v1/workspaces/${acmeWs.id}`, { key: wk.key });
    expect(own.status).toBe(200);
    const me = await s.api("GET", "/v1/me", { key: wk.key, bearer: true });
    expect(me.body).toEqual({ keyId: wk.id, kind: "workspace", tenantId: acme.tenant.id, workspaceId: acmeWs.id });
    const list = await s.api("GET", "/v1/workspaces", { key: wk.key });
    expect(list.body.workspaces.map((w: { id: string }) => w.id)).toEqual([acmeWs.id]);

    const missing = await s.api("GET", "/v1/workspaces/0190a1a2-0000-7000-8000-000000000000", { key: wk.key });
    for (const id of [acme.workspace.id, other.workspace.id]) {
      const r = await s.api("GET", `/v1/workspaces/${id}`, { key: wk.key });
      expect(r.status).toBe(404);
      expect(r.body).toEqual(missing.body);
    }
  });

  it("a wk_ key can never create workspaces or keys, nor manage keys", async () => {
    const ws = await s.api("POST", "/v1/workspaces", { key: wk.key, body: { name: "Mine" } });
    expect(ws.status).toBe(403);
    const key = await s.api("POST", `/v1/workspaces/${acmeWs.id}/keys`, { key: wk.key, body: {} });
    expect(key.status).toBe(403);
    const list = await s.api("GET", `/v1/workspaces/${acmeWs.id}/keys`, { key: wk.key });
    expect(list.status).toBe(403);
    const del = await s.api("DELETE", `/v1/workspaces/${acmeWs.id}`, { key: wk.key });
    expect(del.status).toBe(403);
    const after = await s.api("GET", "/v1/workspaces", { key: tk });
    expect(after.body.workspaces.map((w: { name: string }) => w.name)).toEqual(["Default", "Acme Corp", "Acme Corp"]);
  });

  it("a tk_ key lists all of its tenant's workspaces and none of another's", async () => {
    const mine = await s.api("GET", "/v1/workspaces", { key: tk });
    const ids = mine.body.workspaces.map((w: { id: string }) => w.id);
    expect(ids).toContain(acme.workspace.id);
    expect(ids).toContain(acmeWs.id);
    expect(ids).not.toContain(other.workspace.id);
    const theirs = await s.api("GET", `/v1/workspaces/${other.workspace.id}`, { key: tk });
    expect(theirs.status).toBe(404);
    const theirKeys = await s.api("POST", `/v1/workspaces/${other.workspace.id}/keys`, { key: tk, body: {} });
    expect(theirKeys.status).toBe(404);
  });

  it("the default workspace cannot be deleted", async () => {
    const r = await s.api("DELETE", `/v1/workspaces/${acme.workspace.id}`, { key: tk });
    expect(r.status).toBe(409);
    expect((await s.api("GET", `/v1/workspaces/${acme.workspace.id}`, { key: tk })).status).toBe(200);
  });

  it("a revoked key is refused by every gateway instance within a second", async () => {
    // Both gateways have the key cached.
    for (const i of [0, 1]) expect((await s.client(i)("GET", "/v1/me", { key: wk.key })).status).toBe(200);
    const revoked = await s.api("DELETE", `/v1/workspaces/${acmeWs.id}/keys/${wk.id}`, { key: tk });
    expect(revoked.body).toEqual({ revoked: true, id: wk.id });
    const t0 = Date.now();
    for (const i of [0, 1]) {
      await waitFor(async () => (await s.client(i)("GET", "/v1/me", { key: wk.key })).status === 401, {
        timeoutMs: 1_000,
        what: `gateway ${i} refusing the key`,
      });
    }
    expect(Date.now() - t0).toBeLessThan(1_000);
    const r = await s.api("GET", `/v1/workspaces/${acmeWs.id}`, { key: wk.key });
    expect(r.body).toEqual({ error: "Invalid API key", code: "UNAUTHORIZED" });
    const list = await s.api("GET", `/v1/workspaces/${acmeWs.id}/keys`, { key: tk });
    expect(list.body.keys).toEqual([]);
  });

  it("deleting a workspace hides it and revokes its keys", async () => {
    const ws = (await s.api("POST", "/v1/workspaces", { key: tk, body: { name: "Doomed" } })).body;
    const key = (await s.api("POST", `/v1/workspaces/${ws.id}/keys`, { key: tk, body: {} })).body;
    expect((await s.api("GET", "/v1/me", { key: key.key })).status).toBe(200);
    const del = await s.api("DELETE", `/v1/workspaces/${ws.id}`, { key: tk });
    expect(del.body).toEqual({ deleted: true, id: ws.id });
    expect((await s.api("GET", `/v1/workspaces/${ws.id}`, { key: tk })).status).toBe(404);
    expect((await s.api("DELETE", `/v1/workspaces/${ws.id}`, { key: tk })).status).toBe(404);
    await waitFor(async () => (await s.api("GET", "/v1/me", { key: key.key })).status === 401, { timeoutMs: 1_000 });
    // The slug is free again.
    const again = await s.api("POST", "/v1/workspaces", { key: tk, body: { name: "Doomed" } });
    expect(again.body.slug).toBe("doomed");
  });
});
