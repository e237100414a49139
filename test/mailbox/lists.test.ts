import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provisionTenant, Stack } from "../support/stack.ts";

describe("address lists", () => {
  const s = new Stack({ logLevel: "warn" });
  let inbox: { id: string; apiKey: string };
  let other: { id: string; apiKey: string };
  let otherWorkspaceKey: string;

  beforeAll(async () => {
    await s.start();
    const t = await provisionTenant(s);
    inbox = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "lists" } })).body;
    other = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "other" } })).body;
    const ws = (await s.api("POST", "/v1/workspaces", { key: t.key.key, body: { name: "Elsewhere" } })).body.id;
    otherWorkspaceKey = (await s.api("POST", `/v1/workspaces/${ws}/keys`, { key: t.key.key, body: {} })).body.key;
  });
  afterAll(() => s.stop());

  it("create, add entries, read back, patch, remove, delete", async () => {
    const k = inbox.apiKey;
    const created = await s.api("POST", `/v1/inboxes/${inbox.id}/lists`, { key: k, body: { name: "Investors", description: "Seed round" } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: "Investors", description: "Seed round", entryCount: 0, entries: [], inboxId: inbox.id });
    const lid = created.body.id;

    const e1 = await s.api("POST", `/v1/inboxes/${inbox.id}/lists/${lid}/entries`, {
      key: k,
      body: { email: "Ada@Example.com", displayName: "Ada", metadata: { tier: 1 } },
    });
    expect(e1.status).toBe(201);
    expect(e1.body).toMatchObject({ email: "ada@example.com", displayName: "Ada", metadata: { tier: 1 } });
    const dup = await s.api("POST", `/v1/inboxes/${inbox.id}/lists/${lid}/entries`, { key: k, body: { email: "ada@example.com" } });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe("CONFLICT");
    await s.api("POST", `/v1/inboxes/${inbox.id}/lists/${lid}/entries`, { key: k, body: { email: "bob@example.com" } });

    let got = (await s.api("GET", `/v1/inboxes/${inbox.id}/lists/${lid}`, { key: k })).body;
    expect(got.entryCount).toBe(2);
    expect(got.entries.map((e: { email: string }) => e.email)).toEqual(["ada@example.com", "bob@example.com"]);

    const patched = await s.api("PATCH", `/v1/inboxes/${inbox.id}/lists/${lid}`, { key: k, body: { name: "Angels" } });
    expect(patched.body).toMatchObject({ name: "Angels", description: "Seed round" });
    const ep = await s.api("PATCH", `/v1/inboxes/${inbox.id}/lists/${lid}/entries/${e1.body.id}`, { key: k, body: { displayName: "Ada L." } });
    expect(ep.body).toMatchObject({ displayName: "Ada L.", metadata: { tier: 1 } });
    // Metadata is merged (RFC 7396), as an inbox's is.
    const merged = await s.api("PATCH", `/v1/inboxes/${inbox.id}/lists/${lid}/entries/${e1.body.id}`, { key: k, body: { metadata: { stage: "seed" } } });
    expect(merged.body.metadata).toEqual({ tier: 1, stage: "seed" });
    const removed = await s.api("PATCH", `/v1/inboxes/${inbox.id}/lists/${lid}/entries/${e1.body.id}`, { key: k, body: { metadata: { tier: null } } });
    expect(removed.body.metadata).toEqual({ stage: "seed" });

    const rm = await s.api("DELETE", `/v1/inboxes/${inbox.id}/lists/${lid}/entries/${e1.body.id}`, { key: k });
    expect(rm.body).toEqual({ deleted: true, id: e1.body.id });
    got = (await s.api("GET", `/v1/inboxes/${inbox.id}/lists/${lid}`, { key: k })).body;
    expect(got.entries.map((e: { email: string }) => e.email)).toEqual(["bob@example.com"]);

    const all = (await s.api("GET", `/v1/inboxes/${inbox.id}/lists`, { key: k })).body.lists;
    expect(all.map((l: { id: string }) => l.id)).toEqual([lid]);
    expect((await s.api("DELETE", `/v1/inboxes/${inbox.id}/lists/${lid}`, { key: k })).body).toEqual({ deleted: true, id: lid });
    expect((await s.api("GET", `/v1/inboxes/${inbox.id}/lists/${lid}`, { key: k })).status).toBe(404);
  });

  it("bad input is a 400", async () => {
    const k = inbox.apiKey;
    expect((await s.api("POST", `/v1/inboxes/${inbox.id}/lists`, { key: k, body: {} })).status).toBe(400);
    const lid = (await s.api("POST", `/v1/inboxes/${inbox.id}/lists`, { key: k, body: { name: "L" } })).body.id;
    for (const body of [{ email: "not-an-email" }, { email: "a@b.com\r\nBcc: x@y.com" }, { email: "a@b.com", metadata: "x" }]) {
      expect((await s.api("POST", `/v1/inboxes/${inbox.id}/lists/${lid}/entries`, { key: k, body })).status).toBe(400);
    }
  });

  it("another inbox's key, or another workspace's, sees no list and changes nothing", async () => {
    const lid = (await s.api("POST", `/v1/inboxes/${inbox.id}/lists`, { key: inbox.apiKey, body: { name: "Private" } })).body.id;
    const entry = (await s.api("POST", `/v1/inboxes/${inbox.id}/lists/${lid}/entries`, { key: inbox.apiKey, body: { email: "c@example.com" } })).body;
    const before = (await s.api("GET", `/v1/inboxes/${inbox.id}/lists/${lid}`, { key: inbox.apiKey })).body;
    for (const key of [other.apiKey, otherWorkspaceKey]) {
      const calls: [string, string, unknown?][] = [
        ["GET", `/v1/inboxes/${inbox.id}/lists`],
        ["POST", `/v1/inboxes/${inbox.id}/lists`, { name: "x" }],
        ["GET", `/v1/inboxes/${inbox.id}/lists/${lid}`],
        ["PATCH", `/v1/inboxes/${inbox.id}/lists/${lid}`, { name: "x" }],
        ["DELETE", `/v1/inboxes/${inbox.id}/lists/${lid}`],
        ["POST", `/v1/inboxes/${inbox.id}/lists/${lid}/entries`, { email: "x@example.com" }],
        ["PATCH", `/v1/inboxes/${inbox.id}/lists/${lid}/entries/${entry.id}`, { displayName: "x" }],
        ["DELETE", `/v1/inboxes/${inbox.id}/lists/${lid}/entries/${entry.id}`],
        // The list through an inbox the key does see: still not there.
        ["GET", `/v1/inboxes/${other.id}/lists/${lid}`],
      ];
      for (const [m, p, body] of calls) {
        const r = await s.api(m, p, { key, body });
        expect(r.status, `${m} ${p}`).toBe(404);
      }
    }
    expect((await s.api("GET", `/v1/inboxes/${inbox.id}/lists/${lid}`, { key: inbox.apiKey })).body).toEqual(before);
  });
});
