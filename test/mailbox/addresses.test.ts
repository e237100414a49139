import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provisionTenant, Stack } from "../support/stack.ts";

type Tenant = Awaited<ReturnType<typeof provisionTenant>>;

/** Addresses nobody can abuse: role names reserved, released addresses held back, aliases capped. */
describe("addresses of the platform domain", () => {
  const s = new Stack({ logLevel: "warn", mailboxEnv: { RESERVED_LOCAL_PARTS: "billing, Status", MAX_ADDRESSES_PER_INBOX: "3" } });
  const D = s.mailDomain;
  let a: Tenant;
  let b: Tenant;

  beforeAll(async () => {
    await s.start();
    a = await provisionTenant(s, "Previous Owner");
    b = await provisionTenant(s, "Newcomer");
  });
  afterAll(() => s.stop());

  const create = (t: Tenant, username: string, strict = true) =>
    s.api("POST", `/v1/inboxes${strict ? "?strict=true" : ""}`, { key: t.key.key, body: { username } });

  it("refuses role and system names as usernames, strict or not: 400 naming the field", async () => {
    const names = ["postmaster", "abuse", "admin", "hostmaster", "webmaster", "mailer-daemon", "root", "noreply", "no-reply", "info", "ssl-admin"];
    for (const username of [...names, "billing", "status"]) {
      for (const strict of [true, false]) {
        const r = await create(a, username, strict);
        expect(r.status, username).toBe(400);
        expect(r.body.code).toBe("VALIDATION_ERROR");
        expect(r.body.error).toMatch(new RegExp(`"${username}" is reserved on ${D.replace(".", "\\.")}`));
        expect(r.body.fields).toEqual([{ path: "username", message: "reserved for the platform" }]);
      }
    }
    expect((await s.api("GET", "/v1/inboxes", { key: a.key.key })).body.inboxes).toEqual([]);
  });

  it("refuses them as aliases too, and the platform's return paths (bounces+…)", async () => {
    const inbox = (await create(a, "alias-host")).body;
    for (const local of ["postmaster", "hostmaster", "admin", "abuse", "billing", "bounces+abcdefghijklmnopqrstuvwx"]) {
      const r = await s.api("POST", `/v1/inboxes/${inbox.id}/addresses`, { key: a.key.key, body: { email: `${local}@${D}` } });
      expect(r.status, local).toBe(400);
      expect(r.body.code).toBe("VALIDATION_ERROR");
      expect(r.body.error).toMatch(/is reserved/);
    }
    expect((await s.api("GET", `/v1/inboxes/${inbox.id}`, { key: a.key.key })).body.addresses).toHaveLength(1);
  });

  it("caps an inbox's addresses at MAX_ADDRESSES_PER_INBOX, its own included: 409 beyond", async () => {
    const inbox = (await create(a, "capped")).body;
    for (const alias of ["capped-1", "capped-2"]) {
      expect((await s.api("POST", `/v1/inboxes/${inbox.id}/addresses`, { key: inbox.apiKey, body: { email: `${alias}@${D}` } })).status).toBe(201);
    }
    const over = await s.api("POST", `/v1/inboxes/${inbox.id}/addresses`, { key: inbox.apiKey, body: { email: `capped-3@${D}` } });
    expect(over.status).toBe(409);
    expect(over.body.code).toBe("CONFLICT");
    expect(over.body.error).toMatch(/at most 3 addresses, its own included/);
    // Removing one makes room again.
    await s.api("DELETE", `/v1/inboxes/${inbox.id}/addresses/${encodeURIComponent(`capped-2@${D}`)}`, { key: a.key.key });
    expect((await s.api("POST", `/v1/inboxes/${inbox.id}/addresses`, { key: inbox.apiKey, body: { email: `capped-3@${D}` } })).status).toBe(201);
  });

  it("holds a deleted inbox's addresses back from other tenants (409, said why); its own tenant takes them again", async () => {
    const old = (await create(a, "resets")).body;
    await s.api("POST", `/v1/inboxes/${old.id}/addresses`, { key: a.key.key, body: { email: `resets-alias@${D}` } });
    expect((await s.api("DELETE", `/v1/inboxes/${old.id}`, { key: a.key.key })).status).toBe(200);

    const taken = await create(b, "resets");
    expect(taken.status).toBe(409);
    expect(taken.body.code).toBe("USERNAME_TAKEN");
    expect(taken.body.error).toMatch(/resets@.* was released recently by another account and is held back/);
    // Without strict, the stranger gets a fallback, never the released address.
    const fallback = await create(b, "resets", false);
    expect(fallback.status).toBe(201);
    expect(fallback.body.username).toBe("resets1");
    const alias = await s.api("POST", `/v1/inboxes/${fallback.body.id}/addresses`, { key: b.key.key, body: { email: `resets-alias@${D}` } });
    expect(alias.status).toBe(409);
    expect(alias.body.error).toMatch(/held back/);

    const back = await create(a, "resets");
    expect(back.status).toBe(201);
    const aliasBack = await s.api("POST", `/v1/inboxes/${back.body.id}/addresses`, { key: a.key.key, body: { email: `resets-alias@${D}` } });
    expect(aliasBack.status).toBe(201);
  });

  it("never hands a released address to a stranger racing its release", async () => {
    for (let round = 0; round < 4; round++) {
      const username = `contested-${round}`;
      const held = (await create(a, username)).body;
      const [deleted, ...grabs] = await Promise.all([
        s.api("DELETE", `/v1/inboxes/${held.id}`, { key: a.key.key }),
        ...Array.from({ length: 6 }, () => create(b, username)),
      ]);
      expect(deleted.status).toBe(200);
      // Before the release the address is taken, after it held back: 409 either way, never 201.
      for (const g of grabs) expect(g.status).toBe(409);
    }
    const mine = (await s.api("GET", "/v1/inboxes", { key: b.key.key })).body.inboxes.map((i: { username: string }) => i.username);
    expect(mine.filter((u: string) => u.startsWith("contested"))).toEqual([]);
  });
});

describe("with ADDRESS_QUARANTINE_DAYS=0", () => {
  const s = new Stack({ logLevel: "warn", mailboxEnv: { ADDRESS_QUARANTINE_DAYS: "0" } });

  beforeAll(() => s.start());
  afterAll(() => s.stop());

  it("a released address is free for anyone at once", async () => {
    const a = await provisionTenant(s, "First");
    const b = await provisionTenant(s, "Second");
    const old = (await s.api("POST", "/v1/inboxes?strict=true", { key: a.key.key, body: { username: "handover" } })).body;
    await s.api("DELETE", `/v1/inboxes/${old.id}`, { key: a.key.key });
    const r = await s.api("POST", "/v1/inboxes?strict=true", { key: b.key.key, body: { username: "handover" } });
    expect(r.status).toBe(201);
    expect(r.body.email).toBe(`handover@${s.mailDomain}`);
  });
});
