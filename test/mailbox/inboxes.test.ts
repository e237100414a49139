import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

describe("inboxes and addresses", () => {
  const s = new Stack({ logLevel: "warn" });
  const D = s.mailDomain;
  let a: Awaited<ReturnType<typeof provisionTenant>>;
  let b: Awaited<ReturnType<typeof provisionTenant>>;
  let acmeWs: string;
  let acmeKey: string;

  beforeAll(async () => {
    await s.start();
    a = await provisionTenant(s, "Scout Labs");
    b = await provisionTenant(s, "Other Co");
    acmeWs = (await s.api("POST", "/v1/workspaces", { key: a.key.key, body: { name: "Acme Corp" } })).body.id;
    acmeKey = (await s.api("POST", `/v1/workspaces/${acmeWs}/keys`, { key: a.key.key, body: {} })).body.key;
  });
  afterAll(() => s.stop());

  it("creates an inbox once with its ak_ key; asking again returns it without secrets", async () => {
    const r = await s.api("POST", "/v1/inboxes", { key: a.key.key, body: { username: "Helpdesk", displayName: "Support desk" } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      email: `helpdesk@${D}`,
      canonicalEmail: `helpdesk@${D}`,
      username: "helpdesk",
      domain: D,
      displayName: "Support desk",
      workspaceId: a.workspace.id,
      addresses: [{ address: `helpdesk@${D}`, isPrimary: true }],
      metadata: {},
      existed: false,
    });
    expect(r.body.apiKey).toMatch(/^ak_[A-Za-z0-9_-]{43}$/);
    const again = await s.api("POST", "/v1/inboxes", { key: a.key.key, body: { username: "helpdesk" } });
    expect(again.status).toBe(200);
    expect(again.body.existed).toBe(true);
    expect(again.body.id).toBe(r.body.id);
    expect(again.body.apiKey).toBeUndefined();
    // Readable at once, and the ak_ key sees it.
    const me = await s.api("GET", "/v1/me", { key: r.body.apiKey });
    expect(me.body).toEqual({ keyId: expect.any(String), kind: "inbox", tenantId: a.tenant.id, workspaceId: a.workspace.id, inboxId: r.body.id });
    const got = await s.api("GET", `/v1/inboxes/${r.body.id}`, { key: r.body.apiKey });
    const { apiKey: _k, existed: _e, ...view } = r.body;
    expect(got.body).toEqual(view);
  });

  it("a name owned by another tenant falls back to name1, name2…; strict answers 409 USERNAME_TAKEN", async () => {
    const first = await s.api("POST", "/v1/inboxes", { key: b.key.key, body: { username: "deals" } });
    expect(first.body.email).toBe(`deals@${D}`);
    const second = await s.api("POST", "/v1/inboxes", { key: a.key.key, body: { username: "deals" } });
    expect(second.status).toBe(201);
    expect(second.body.username).toBe("deals1");
    // Asking again gives back the inbox the fallback allocated, not another one.
    const repeat = await s.api("POST", "/v1/inboxes", { key: a.key.key, body: { username: "deals" } });
    expect(repeat.status).toBe(200);
    expect(repeat.body.id).toBe(second.body.id);
    const third = await s.api("POST", "/v1/inboxes", { key: b.key.key, body: { username: "deals1" } });
    expect(third.body.username).toBe("deals11");
    const strict = await s.api("POST", "/v1/inboxes?strict=true", { key: b.key.key, body: { username: "helpdesk" } });
    expect(strict.status).toBe(409);
    expect(strict.body.code).toBe("USERNAME_TAKEN");
  });

  it("an address is unique across all tenants, also under concurrent creates", async () => {
    const tenants = [a, b, await provisionTenant(s, "Third")];
    const results = await Promise.all(
      Array.from({ length: 9 }, (_, i) => s.api("POST", "/v1/inboxes", { key: tenants[i % 3]!.key.key, body: { username: "rush" } })),
    );
    expect(results.map((r) => r.status).every((st) => st === 200 || st === 201)).toBe(true);
    const emails = results.filter((r) => r.status === 201).map((r) => r.body.email);
    // Each tenant gets exactly one new address; repeats by the same tenant return its own inbox.
    expect(new Set(emails).size).toBe(emails.length);
    const byTenant = new Map<string, Set<string>>();
    results.forEach((r, i) => {
      const t = tenants[i % 3]!.tenant.id;
      byTenant.set(t, (byTenant.get(t) ?? new Set()).add(r.body.email));
    });
    const all = [...byTenant.values()].map((set) => [...set]);
    expect(all.every((e) => e.length === 1)).toBe(true);
    expect(new Set(all.flat()).size).toBe(3);
  });

  it("a wk_ key's inbox lands in its workspace; workspaceId is for tk_ keys only", async () => {
    const r = await s.api("POST", "/v1/inboxes", { key: acmeKey, body: { username: "acme-bot" } });
    expect(r.body.workspaceId).toBe(acmeWs);
    const other = await s.api("POST", "/v1/inboxes", { key: acmeKey, body: { username: "x", workspaceId: a.workspace.id } });
    expect(other.status).toBe(403);
    const viaTenant = await s.api("POST", "/v1/inboxes", { key: a.key.key, body: { username: "acme-two", workspaceId: acmeWs } });
    expect(viaTenant.body.workspaceId).toBe(acmeWs);
    const foreign = await s.api("POST", "/v1/inboxes", { key: a.key.key, body: { username: "nope", workspaceId: b.workspace.id } });
    expect(foreign.status).toBe(404);
  });

  it("lists by scope: tk_ all (or ?workspace=), wk_ its workspace, ak_ its inbox", async () => {
    const all = (await s.api("GET", "/v1/inboxes", { key: a.key.key })).body.inboxes.map((i: { workspaceId: string }) => i.workspaceId);
    expect(new Set(all)).toEqual(new Set([a.workspace.id, acmeWs]));
    const acme = (await s.api("GET", `/v1/inboxes?workspace=${acmeWs}`, { key: a.key.key })).body.inboxes;
    expect(acme.map((i: { username: string }) => i.username).sort()).toEqual(["acme-bot", "acme-two"]);
    const wk = (await s.api("GET", "/v1/inboxes", { key: acmeKey })).body.inboxes;
    expect(wk).toEqual(acme);
    expect((await s.api("GET", `/v1/inboxes?workspace=${a.workspace.id}`, { key: acmeKey })).status).toBe(404);
    const created = await s.api("POST", "/v1/inboxes", { key: acmeKey, body: { username: "solo" } });
    const ak = (await s.api("GET", "/v1/inboxes", { key: created.body.apiKey })).body.inboxes;
    expect(ak.map((i: { id: string }) => i.id)).toEqual([created.body.id]);
  });

  it("workspaces count their inboxes", async () => {
    const live = (await s.api("GET", "/v1/inboxes", { key: acmeKey })).body.inboxes.length;
    await waitFor(async () => (await s.api("GET", `/v1/workspaces/${acmeWs}`, { key: acmeKey })).body.inboxCount === live, {
      timeoutMs: 5_000,
      what: "inboxCount",
    });
  });

  it("derives the username from the tenant's name when none is given", async () => {
    const r = await s.api("POST", "/v1/inboxes", { key: a.key.key, body: {} });
    expect(r.body.username).toBe("scout-labs");
  });

  it("derives a tenant called Support an inbox support1 (the role name is reserved), the same one when asked again", async () => {
    const t = await provisionTenant(s, "Support");
    const first = await s.api("POST", "/v1/inboxes", { key: t.key.key, body: {} });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.body.username).toBe("support1");
    const again = await s.api("POST", "/v1/inboxes", { key: t.key.key, body: {} });
    expect(again.body).toMatchObject({ id: first.body.id, existed: true });
  });

  it("patches displayName and metadata; identity fields are immutable", async () => {
    const inbox = (await s.api("POST", "/v1/inboxes", { key: a.key.key, body: { username: "patchme" } })).body;
    const r = await s.api("PATCH", `/v1/inboxes/${inbox.id}`, { key: inbox.apiKey, body: { displayName: "New name", metadata: { team: "ops" } } });
    expect(r.body).toEqual({ updated: true, id: inbox.id });
    const got = (await s.api("GET", `/v1/inboxes/${inbox.id}`, { key: a.key.key })).body;
    expect(got).toMatchObject({ displayName: "New name", metadata: { team: "ops" }, username: "patchme" });
    const bad = await s.api("PATCH", `/v1/inboxes/${inbox.id}`, { key: a.key.key, body: { metadata: "nope" } });
    expect(bad.status).toBe(400);
    const empty = await s.api("PATCH", `/v1/inboxes/${inbox.id}`, { key: a.key.key, body: { username: "hijack" } });
    expect(empty.status).toBe(400);
    expect((await s.api("GET", `/v1/inboxes/${inbox.id}`, { key: a.key.key })).body.username).toBe("patchme");
  });

  it("merges a metadata PATCH into what the inbox has (RFC 7396): keys given replace theirs, objects merge, null removes", async () => {
    const inbox = (await s.api("POST", "/v1/inboxes", { key: a.key.key, body: { username: "merged", metadata: { team: "ops", tags: { a: 1, b: 2 } } } })).body;
    const patch = (metadata: unknown) => s.api("PATCH", `/v1/inboxes/${inbox.id}`, { key: inbox.apiKey, body: { metadata } });
    const metadata = async () => (await s.api("GET", `/v1/inboxes/${inbox.id}`, { key: a.key.key })).body.metadata;
    expect((await patch({ region: "eu" })).status).toBe(200);
    expect(await metadata()).toEqual({ team: "ops", tags: { a: 1, b: 2 }, region: "eu" });
    expect((await patch({ team: null, tags: { b: null, c: [3] } })).status).toBe(200);
    expect(await metadata()).toEqual({ tags: { a: 1, c: [3] }, region: "eu" });
    // Each patch within the bound, the merge past it: refused, nothing changed.
    expect((await patch({ big1: "x".repeat(9_000) })).status).toBe(200);
    const over = await patch({ big2: "x".repeat(9_000) });
    expect(over.status).toBe(400);
    expect(over.body.fields).toEqual([expect.objectContaining({ path: "metadata" })]);
    expect(Object.keys(await metadata()).sort()).toEqual(["big1", "region", "tags"]);
  });

  it("aliases: primary by default, 409 when taken, canonical kept, primary falls back to canonical", async () => {
    const inbox = (await s.api("POST", "/v1/inboxes", { key: a.key.key, body: { username: "alias-owner" } })).body;
    const add = await s.api("POST", `/v1/inboxes/${inbox.id}/addresses`, { key: inbox.apiKey, body: { email: `Hello@${D}` } });
    expect(add.status).toBe(201);
    expect(add.body).toEqual({ ok: true, address: `hello@${D}`, isPrimary: true });
    // Mail goes out from the primary address; with none, from the canonical one.
    const sentFrom = async () => {
      const sent = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, {
        key: inbox.apiKey,
        body: { to: [`partner@${D}`], subject: "From?", plainBody: "x", verified: true },
      });
      expect(sent.status).toBe(200);
      return (await s.api("GET", `/v1/inboxes/${inbox.id}/messages/${sent.body.id}`, { key: inbox.apiKey })).body.from;
    };
    expect(await sentFrom()).toBe(`hello@${D}`);
    let got = (await s.api("GET", `/v1/inboxes/${inbox.id}`, { key: a.key.key })).body;
    expect(got.email).toBe(`hello@${D}`);
    expect(got.canonicalEmail).toBe(`alias-owner@${D}`);
    const side = await s.api("POST", `/v1/inboxes/${inbox.id}/addresses`, { key: a.key.key, body: { email: `side@${D}`, primary: false } });
    expect(side.body.isPrimary).toBe(false);
    const taken = await s.api("POST", `/v1/inboxes/${inbox.id}/addresses`, { key: a.key.key, body: { email: `deals@${D}` } });
    expect(taken.status).toBe(409);
    const offDomain = await s.api("POST", `/v1/inboxes/${inbox.id}/addresses`, { key: a.key.key, body: { email: "me@example.com" } });
    expect(offDomain.status).toBe(400);
    const canonical = await s.api("DELETE", `/v1/inboxes/${inbox.id}/addresses/${encodeURIComponent(`alias-owner@${D}`)}`, { key: a.key.key });
    expect(canonical.status).toBe(409);
    const del = await s.api("DELETE", `/v1/inboxes/${inbox.id}/addresses/${encodeURIComponent(`hello@${D}`)}`, { key: a.key.key });
    expect(del.body).toEqual({ deleted: true, address: `hello@${D}` });
    got = (await s.api("GET", `/v1/inboxes/${inbox.id}`, { key: a.key.key })).body;
    expect(got.email).toBe(`alias-owner@${D}`);
    expect(await sentFrom()).toBe(`alias-owner@${D}`);
    expect(got.addresses).toEqual([
      { address: `alias-owner@${D}`, isPrimary: true },
      { address: `side@${D}`, isPrimary: false },
    ]);
    // A removed address is held back from other tenants (ADDRESS_QUARANTINE_DAYS); its own tenant takes it again at once.
    const stranger = await s.api("POST", "/v1/inboxes?strict=true", { key: b.key.key, body: { username: "hello" } });
    expect(stranger.status).toBe(409);
    expect(stranger.body.code).toBe("USERNAME_TAKEN");
    const reuse = await s.api("POST", "/v1/inboxes?strict=true", { key: a.key.key, body: { username: "hello" } });
    expect(reuse.status).toBe(201);
  });

  it("soft delete hides the inbox, revokes its ak_ key and frees its addresses for its tenant; ak_ keys cannot delete", async () => {
    const inbox = (await s.api("POST", "/v1/inboxes", { key: a.key.key, body: { username: "temp" } })).body;
    // Its mail is read before (so the mailbox knows where the inbox lives), and is gone with it.
    const sent = (
      await s.api("POST", `/v1/inboxes/${inbox.id}/send`, { key: a.key.key, body: { to: [inbox.email], subject: "Before", plainBody: "x", verified: true } })
    ).body;
    const mail = [`/v1/inboxes/${inbox.id}/messages`, `/v1/inboxes/${inbox.id}/threads/${sent.threadId}`, `/v1/inboxes/${inbox.id}/messages?offset=5`];
    for (const path of mail) expect((await s.api("GET", path, { key: a.key.key })).status, path).toBe(200);
    expect((await s.api("DELETE", `/v1/inboxes/${inbox.id}`, { key: inbox.apiKey })).status).toBe(403);
    expect((await s.api("DELETE", `/v1/inboxes/${inbox.id}`, { key: a.key.key })).body).toEqual({ deleted: true, id: inbox.id });
    expect((await s.api("GET", `/v1/inboxes/${inbox.id}`, { key: a.key.key })).status).toBe(404);
    for (const path of mail) expect((await s.api("GET", path, { key: a.key.key })).body, path).toEqual({ error: "Inbox not found", code: "NOT_FOUND" });
    // Hidden at once (404), and its key revoked a moment later (401).
    expect([401, 404]).toContain((await s.api("GET", `/v1/inboxes/${inbox.id}`, { key: inbox.apiKey })).status);
    // Its ak_ key is revoked: refused everywhere, as an unknown key.
    await waitFor(async () => (await s.api("GET", "/v1/me", { key: inbox.apiKey })).status === 401, { timeoutMs: 5_000, what: "ak_ revoked" });
    const list = (await s.api("GET", "/v1/inboxes", { key: a.key.key })).body.inboxes;
    expect(list.map((i: { id: string }) => i.id)).not.toContain(inbox.id);
    expect((await s.api("POST", "/v1/inboxes?strict=true", { key: b.key.key, body: { username: "temp" } })).status).toBe(409);
    const again = await s.api("POST", "/v1/inboxes?strict=true", { key: a.key.key, body: { username: "temp" } });
    expect(again.status).toBe(201);
  });

  it("bad input gets a clear 400", async () => {
    for (const body of [
      { username: "has space" },
      { username: "-dash" },
      { username: "a".repeat(65) },
      { displayName: "x\r\nBcc: evil@x.com" },
      { domain: "not a domain" },
    ]) {
      const r = await s.api("POST", "/v1/inboxes", { key: a.key.key, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.code).toBe("VALIDATION_ERROR");
    }
    const foreignDomain = await s.api("POST", "/v1/inboxes", { key: a.key.key, body: { username: "x", domain: "example.com" } });
    expect(foreignDomain.status).toBe(400);
    const badId = await s.api("GET", "/v1/inboxes/not-a-uuid", { key: a.key.key });
    expect(badId.status).toBe(400);
  });
});
