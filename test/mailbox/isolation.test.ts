import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provisionTenant, Stack } from "../support/stack.ts";

/**
 * Every inbox endpoint, called with a wk_ key of another workspace, an ak_ key of
 * another inbox, and another tenant's tk_ key: 404, and nothing changes.
 */
describe("inbox isolation", () => {
  const s = new Stack({ logLevel: "warn" });
  const D = s.mailDomain;
  let tk: string;
  let target: { id: string; apiKey: string };
  const outsiders: Record<string, string> = {};

  beforeAll(async () => {
    await s.start();
    const t = await provisionTenant(s);
    tk = t.key.key;
    const w1 = (await s.api("POST", "/v1/workspaces", { key: tk, body: { name: "One" } })).body.id;
    const w2 = (await s.api("POST", "/v1/workspaces", { key: tk, body: { name: "Two" } })).body.id;
    const wk1 = (await s.api("POST", `/v1/workspaces/${w1}/keys`, { key: tk, body: {} })).body.key;
    outsiders["wk_ of another workspace"] = (await s.api("POST", `/v1/workspaces/${w2}/keys`, { key: tk, body: {} })).body.key;
    target = (await s.api("POST", "/v1/inboxes", { key: wk1, body: { username: "target" } })).body;
    await s.api("POST", `/v1/inboxes/${target.id}/addresses`, { key: tk, body: { email: `alias@${D}`, primary: false } });
    outsiders["ak_ of another inbox"] = (await s.api("POST", "/v1/inboxes", { key: wk1, body: { username: "neighbour" } })).body.apiKey;
    outsiders["tk_ of another tenant"] = (await provisionTenant(s, "Stranger")).key.key;
  });
  afterAll(() => s.stop());

  const endpoints = (): [string, string, unknown?][] => [
    ["GET", `/v1/inboxes/${target.id}`],
    ["PATCH", `/v1/inboxes/${target.id}`, { displayName: "pwned" }],
    ["DELETE", `/v1/inboxes/${target.id}`],
    ["POST", `/v1/inboxes/${target.id}/addresses`, { email: `stolen@${D}` }],
    ["DELETE", `/v1/inboxes/${target.id}/addresses/${encodeURIComponent(`alias@${D}`)}`],
  ];

  it("answers 404 to every outsider on every endpoint, and changes nothing", async () => {
    const before = (await s.api("GET", `/v1/inboxes/${target.id}`, { key: tk })).body;
    for (const [who, key] of Object.entries(outsiders)) {
      for (const [method, path, body] of endpoints()) {
        const r = await s.api(method, path, { key, body });
        // An ak_ key may not delete inboxes at all (403); every other refusal is the 404 of a missing inbox.
        const expected = who.startsWith("ak_") && method === "DELETE" && !path.includes("/addresses/") ? 403 : 404;
        expect(r.status, `${who} ${method} ${path}`).toBe(expected);
      }
    }
    expect((await s.api("GET", `/v1/inboxes/${target.id}`, { key: tk })).body).toEqual(before);
    // The address an outsider tried to add is still free.
    const free = await s.api("POST", `/v1/inboxes/${target.id}/addresses`, { key: target.apiKey, body: { email: `stolen@${D}` } });
    expect(free.status).toBe(201);
  });

  it("lists never show the inbox to outsiders", async () => {
    for (const key of Object.values(outsiders)) {
      const r = await s.api("GET", "/v1/inboxes", { key });
      expect(r.body.inboxes.map((i: { id: string }) => i.id)).not.toContain(target.id);
    }
  });

  it("a 404 for an outsider looks exactly like a 404 for an id that does not exist", async () => {
    const missing = await s.api("GET", "/v1/inboxes/0190a1a2-0000-7000-8000-000000000000", { key: tk });
    const hidden = await s.api("GET", `/v1/inboxes/${target.id}`, { key: outsiders["wk_ of another workspace"] });
    expect(hidden.body).toEqual(missing.body);
  });
});
