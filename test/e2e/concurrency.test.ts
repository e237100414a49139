import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provisionTenant, Stack } from "../support/stack.ts";

/** Decisions that span rows hold under parallel requests, across two gateways. */
describe("concurrent commands", () => {
  const s = new Stack({ gateways: 2, logLevel: "warn" });
  beforeAll(() => s.start());
  afterAll(() => s.stop());

  it("parallel creates of the same workspace name get distinct slugs", async () => {
    const t = await provisionTenant(s);
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => s.client(i % 2)("POST", "/v1/workspaces", { key: t.key.key, body: { name: "Acme Corp" } })),
    );
    expect(results.map((r) => r.status)).toEqual(Array(12).fill(201));
    const slugs = results.map((r) => r.body.slug).sort();
    expect(new Set(slugs).size).toBe(12);
    expect(slugs).toContain("acme-corp");
    const list = await s.api("GET", "/v1/workspaces", { key: t.key.key });
    expect(list.body.workspaces).toHaveLength(13);
  });

  it("parallel creates of one explicit slug: exactly one wins, the rest are 409", async () => {
    const t = await provisionTenant(s);
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => s.client(i % 2)("POST", "/v1/workspaces", { key: t.key.key, body: { name: `W${i}`, slug: "same" } })),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(7);
  });

  it("parallel tenants and keys are all issued, each unique", async () => {
    const tenants = await Promise.all(Array.from({ length: 6 }, (_, i) => provisionTenant(s, `T${i}`)));
    const ws = tenants[0]!.workspace.id;
    const keys = await Promise.all(Array.from({ length: 10 }, () => s.api("POST", `/v1/workspaces/${ws}/keys`, { key: tenants[0]!.key.key, body: {} })));
    const all = [...tenants.map((t) => t.key.key), ...keys.map((k) => k.body.key)];
    expect(new Set(all).size).toBe(16);
    const listed = await s.api("GET", `/v1/workspaces/${ws}/keys`, { key: tenants[0]!.key.key });
    expect(listed.body.keys).toHaveLength(10);
  });

  it("tenants racing for one username each get their own address; with strict, exactly one gets it", async () => {
    const tenants = await Promise.all(Array.from({ length: 6 }, (_, i) => provisionTenant(s, `Racer${i}`)));
    const create = (key: string, strict: boolean, username: string) =>
      s.client(0)("POST", `/v1/inboxes${strict ? "?strict=true" : ""}`, { key, body: { username } });
    const loose = await Promise.all(tenants.map((t) => create(t.key.key, false, "contested")));
    expect(loose.map((r) => r.status)).toEqual(Array(6).fill(201));
    const addresses = loose.map((r) => r.body.email as string);
    expect(new Set(addresses).size).toBe(6);
    expect(addresses).toContain("contested@agents.test");
    const strict = await Promise.all(tenants.map((t) => create(t.key.key, true, "only-one")));
    expect(strict.filter((r) => r.status === 201)).toHaveLength(1);
    expect(strict.filter((r) => r.status === 409).map((r) => r.body.code)).toEqual(Array(5).fill("USERNAME_TAKEN"));
    // Losers may have been issued an ak_ key before losing under the lock: it is revoked, so
    // each tenant keeps one live inbox key per inbox it has.
    for (const [i, t] of tenants.entries()) {
      const keys = (await s.api("GET", `/v1/workspaces/${t.workspace.id}/keys`, { key: t.key.key })).body.keys as { name: string }[];
      expect(keys.filter((k) => k.name === "Inbox key")).toHaveLength(strict[i]!.status === 201 ? 2 : 1);
    }
  });
});
