import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeCursor } from "@mam/contracts/pagination.ts";
import type { ApiResponse } from "@mam/testing/http.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/**
 * Keyset pages of every list outside the mailbox's message views: following `nextCursor`
 * visits each item once, in the list's order; a cursor moves a page, never the scope; a
 * cursor that is not this list's (another list, another filter, forged keys) is a 400.
 */
describe("list cursors", () => {
  const s = new Stack({ logLevel: "warn", realtime: 1 });
  let tk: string;
  let wsA: string;
  let wkA: string;
  let inboxA: { id: string; apiKey: string };

  const ids = (items: { id: string }[]) => items.map((i) => i.id);

  /** Every page of a list by cursor, `limit` at a time: the items in order, and how many pages it took. */
  async function walk(path: string, key: string, field: string, limit: number) {
    const seen: { id: string }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const sep = path.includes("?") ? "&" : "?";
      const r: ApiResponse = await s.api("GET", `${path}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`, { key });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body[field].length).toBeLessThanOrEqual(limit);
      expect(r.body.pagination.limit).toBe(limit);
      seen.push(...r.body[field]);
      cursor = r.body.pagination.nextCursor;
      pages++;
      if (pages > 50) throw new Error(`${path}: the cursor never ends`);
    } while (cursor);
    return { seen, pages };
  }

  /** Paging by cursor visits exactly what one whole page holds, in the same order, once each. */
  async function expectWalkMatches(path: string, key: string, field: string, limit: number, count: number) {
    const whole = await s.api("GET", path, { key });
    expect(whole.status).toBe(200);
    expect(whole.body[field]).toHaveLength(count);
    expect(whole.body.pagination).toMatchObject({ total: count, offset: 0, nextCursor: null });
    const { seen, pages } = await walk(path, key, field, limit);
    expect(ids(seen)).toEqual(ids(whole.body[field]));
    expect(new Set(ids(seen)).size).toBe(count);
    expect(pages).toBe(Math.ceil(count / limit));
    return whole.body[field] as { id: string; createdAt?: string }[];
  }

  const firstCursor = async (path: string, key: string) => {
    const r = await s.api("GET", `${path}${path.includes("?") ? "&" : "?"}limit=1`, { key });
    expect(r.status).toBe(200);
    expect(r.body.pagination.nextCursor).toEqual(expect.any(String));
    return r.body.pagination.nextCursor as string;
  };

  async function expectBadCursors(path: string, key: string, list: string, foreign: string) {
    const sep = path.includes("?") ? "&" : "?";
    const forged = [
      "not a cursor!",
      "x".repeat(600),
      Buffer.from("{not json", "utf8").toString("base64url"),
      foreign,
      encodeCursor(list, ["2026-01-01T00:00:00.000000Z"]),
      encodeCursor(list, ["yesterday", randomUUID()]),
      encodeCursor(list, ["2026-01-01T00:00:00.000000Z", "not-a-uuid"]),
      encodeCursor(list, ["2026-01-01T00:00:00.000000Z", 7]),
    ];
    for (const c of forged) {
      const r = await s.api("GET", `${path}${sep}cursor=${encodeURIComponent(c)}`, { key });
      expect(r.status, c).toBe(400);
      expect(r.body.code).toBe("VALIDATION_ERROR");
    }
    const both = await s.api("GET", `${path}${sep}offset=1&cursor=${await firstCursor(path, key)}`, { key });
    expect(both.status).toBe(400);
    expect(both.body.code).toBe("VALIDATION_ERROR");
  }

  beforeAll(async () => {
    await s.start();
    const t = await provisionTenant(s, "Cursors");
    tk = t.key.key;
    wsA = (await s.api("POST", "/v1/workspaces", { key: tk, body: { name: "A" } })).body.id;
    for (const name of ["B", "C", "D"]) await s.api("POST", "/v1/workspaces", { key: tk, body: { name } });
    wkA = (await s.api("POST", `/v1/workspaces/${wsA}/keys`, { key: tk, body: { name: "a" } })).body.key;
    inboxA = (await s.api("POST", "/v1/inboxes", { key: wkA, body: { username: "cursor-a" } })).body;
  });
  afterAll(() => s.stop());

  it("workspaces: every one once, in order; a tk_ key's cursor gives a wk_ key nothing beyond its own", async () => {
    const all = await expectWalkMatches("/v1/workspaces", tk, "workspaces", 2, 5);
    expect(all.map((w) => w.createdAt)).toEqual(all.map((w) => w.createdAt).sort());
    const cursor = await firstCursor("/v1/workspaces", tk);
    const narrow = await s.api("GET", `/v1/workspaces?cursor=${cursor}`, { key: wkA });
    expect(narrow.status).toBe(200);
    expect(ids(narrow.body.workspaces).every((id) => id === wsA)).toBe(true);
    expect(narrow.body.pagination.total).toBe(1);
    await expectBadCursors("/v1/workspaces", tk, "workspaces", encodeCursor("webhooks", ["2026-01-01T00:00:00.000000Z", randomUUID()]));
  });

  it("a workspace's keys: every one once; another workspace's cursor is refused", async () => {
    for (const name of ["b", "c", "d"]) await s.api("POST", `/v1/workspaces/${wsA}/keys`, { key: tk, body: { name } });
    // The workspace key, the inbox's ak_ key and the three above.
    await expectWalkMatches(`/v1/workspaces/${wsA}/keys`, tk, "keys", 2, 5);
    const other = (await s.api("GET", "/v1/workspaces", { key: tk })).body.workspaces.find((w: { id: string }) => w.id !== wsA).id;
    await s.api("POST", `/v1/workspaces/${other}/keys`, { key: tk, body: {} });
    const cursor = await firstCursor(`/v1/workspaces/${wsA}/keys`, tk);
    const r = await s.api("GET", `/v1/workspaces/${other}/keys?cursor=${cursor}`, { key: tk });
    expect(r.status).toBe(400);
    await expectBadCursors(`/v1/workspaces/${wsA}/keys`, tk, `keys:${wsA}`, encodeCursor("workspaces", ["2026-01-01T00:00:00.000000Z", randomUUID()]));
  });

  it("inboxes: every one once; a filter's cursor is the filter's; an ak_ key sees its own inbox whatever the cursor", async () => {
    for (const username of ["cursor-b", "cursor-c", "cursor-d"]) await s.api("POST", "/v1/inboxes", { key: tk, body: { username } });
    await s.api("POST", "/v1/inboxes", { key: wkA, body: { username: "cursor-e" } });
    await expectWalkMatches("/v1/inboxes", tk, "inboxes", 2, 5);
    await expectWalkMatches(`/v1/inboxes?workspace=${wsA}`, tk, "inboxes", 1, 2);
    const filtered = await firstCursor(`/v1/inboxes?workspace=${wsA}`, tk);
    expect((await s.api("GET", `/v1/inboxes?cursor=${filtered}`, { key: tk })).status).toBe(400);
    const cursor = await firstCursor("/v1/inboxes", tk);
    const own = await s.api("GET", `/v1/inboxes?cursor=${cursor}`, { key: inboxA.apiKey });
    expect(own.status).toBe(200);
    expect(ids(own.body.inboxes).every((id) => id === inboxA.id)).toBe(true);
    const wk = await s.api("GET", `/v1/inboxes?cursor=${cursor}`, { key: wkA });
    expect(wk.body.inboxes.every((i: { workspaceId: string }) => i.workspaceId === wsA)).toBe(true);
    await expectBadCursors("/v1/inboxes", tk, "inboxes:*", filtered);
  });

  it("domains: every one once; a wk_ key's page never holds another workspace's", async () => {
    await s.api("POST", "/v1/domains", { key: wkA, body: { domain: "a1.cursor.example" } });
    await s.api("POST", "/v1/domains", { key: wkA, body: { domain: "a2.cursor.example" } });
    for (const d of ["b1.cursor.example", "b2.cursor.example", "b3.cursor.example"]) {
      expect((await s.api("POST", "/v1/domains", { key: tk, body: { domain: d } })).status).toBe(201);
    }
    await expectWalkMatches("/v1/domains", tk, "domains", 2, 5);
    await expectWalkMatches("/v1/domains", wkA, "domains", 1, 2);
    const cursor = await firstCursor("/v1/domains", tk);
    const wk = await s.api("GET", `/v1/domains?cursor=${cursor}`, { key: wkA });
    expect(wk.body.domains.every((d: { workspaceId: string }) => d.workspaceId === wsA)).toBe(true);
    await expectBadCursors("/v1/domains", tk, "domains", encodeCursor("inboxes:*", ["2026-01-01T00:00:00.000000Z", randomUUID()]));
  });

  it("an inbox's lists and a list's entries: every one once; another list's cursor is refused", async () => {
    const base = `/v1/inboxes/${inboxA.id}/lists`;
    const lists: string[] = [];
    for (const name of ["one", "two", "three"]) lists.push((await s.api("POST", base, { key: inboxA.apiKey, body: { name } })).body.id);
    await expectWalkMatches(base, inboxA.apiKey, "lists", 2, 3);
    for (const n of [1, 2, 3, 4, 5]) await s.api("POST", `${base}/${lists[0]}/entries`, { key: inboxA.apiKey, body: { email: `e${n}@example.com` } });
    await s.api("POST", `${base}/${lists[1]}/entries`, { key: inboxA.apiKey, body: { email: "other@example.com" } });
    const entries = await expectWalkMatches(`${base}/${lists[0]}/entries`, inboxA.apiKey, "entries", 2, 5);
    expect((entries as unknown as { email: string }[]).map((e) => e.email)).toEqual([1, 2, 3, 4, 5].map((n) => `e${n}@example.com`));
    const cursor = await firstCursor(`${base}/${lists[0]}/entries`, inboxA.apiKey);
    expect((await s.api("GET", `${base}/${lists[1]}/entries?cursor=${cursor}`, { key: inboxA.apiKey })).status).toBe(400);
    // Another workspace's key cannot read the entries at all, cursor or not.
    const other = (await s.api("GET", "/v1/workspaces", { key: tk })).body.workspaces.find((w: { id: string }) => w.id !== wsA).id;
    const wkOther = (await s.api("POST", `/v1/workspaces/${other}/keys`, { key: tk, body: {} })).body.key;
    expect((await s.api("GET", `${base}/${lists[0]}/entries?cursor=${cursor}`, { key: wkOther })).status).toBe(404);
    await expectBadCursors(base, inboxA.apiKey, `lists:${inboxA.id}`, cursor);
    await expectBadCursors(
      `${base}/${lists[0]}/entries`,
      inboxA.apiKey,
      `entries:${lists[0]}`,
      encodeCursor(`lists:${inboxA.id}`, ["2026-01-01T00:00:00.000000Z", randomUUID()]),
    );
  });

  it("webhooks: every one once; a wk_ key's page holds its workspace's only", async () => {
    for (const n of [1, 2, 3]) {
      expect((await s.api("POST", "/v1/webhooks", { key: tk, body: { url: `https://hooks.example.com/${n}`, events: ["message.received"] } })).status).toBe(
        201,
      );
    }
    await s.api("POST", "/v1/webhooks", { key: wkA, body: { url: "https://hooks.example.com/a", events: ["message.received"] } });
    await expectWalkMatches("/v1/webhooks", tk, "webhooks", 2, 4);
    const cursor = await firstCursor("/v1/webhooks", tk);
    const wk = await s.api("GET", `/v1/webhooks?cursor=${cursor}`, { key: wkA });
    expect(wk.status).toBe(200);
    expect(wk.body.webhooks.every((w: { workspaceId: string }) => w.workspaceId === wsA)).toBe(true);
    await expectBadCursors("/v1/webhooks", tk, "webhooks", encodeCursor("domains", ["2026-01-01T00:00:00.000000Z", randomUUID()]));
  });

  it("a webhook's deliveries: newest first, attempts a microsecond apart or at the same instant each once", async () => {
    const hook = (await s.api("POST", "/v1/webhooks", { key: wkA, body: { url: "https://hooks.example.com/log", events: ["message.received"] } })).body;
    const otherHook = (await s.api("POST", "/v1/webhooks", { key: wkA, body: { url: "https://hooks.example.com/log2", events: ["message.received"] } })).body;
    // The log is written by the dispatcher; these rows stand for its attempts. Several share
    // a millisecond (a JS Date would make them one instant) and two share the microsecond.
    const times = [
      "2026-12-01 10:00:00.123001",
      "2026-12-01 10:00:00.123002",
      "2026-12-01 10:00:00.123002",
      "2026-12-01 10:00:00.123999",
      "2026-12-01 10:00:01",
    ];
    const rows = times.map((t, i) => ({ at: t, id: randomUUID(), attempt: i + 1 }));
    const db = s.realtimes[0]!.ctx.db;
    for (const [w, r] of [...rows.map((r) => [hook.id, r] as const), [otherHook.id, { at: times[0]!, id: randomUUID(), attempt: 1 }] as const]) {
      await db
        .insertInto("webhook_attempts")
        .values({
          workspace_id: wsA,
          webhook_id: w,
          attempt_id: r.id,
          event_id: `evt_${r.id.slice(0, 14)}7${r.id.slice(15)}`,
          event_type: "message.received",
          attempt: r.attempt,
          attempted_at: r.at as unknown as Date,
          status_code: 500,
          latency_ms: 1,
          success: false,
          error: null,
          next_attempt_at: null,
        })
        .execute();
    }
    const expected = [...rows].sort((a, b) => (a.at === b.at ? (a.id < b.id ? 1 : -1) : a.at < b.at ? 1 : -1)).map((r) => r.id);
    const path = `/v1/webhooks/${hook.id}/deliveries`;
    const { seen, pages } = await walk(path, wkA, "deliveries", 2);
    expect(ids(seen)).toEqual(expected);
    expect(pages).toBe(3);
    const cursor = await firstCursor(path, wkA);
    expect((await s.api("GET", `/v1/webhooks/${otherHook.id}/deliveries?cursor=${cursor}`, { key: wkA })).status).toBe(400);
    await expectBadCursors(path, wkA, `deliveries:${hook.id}`, encodeCursor("webhooks", ["2026-01-01T00:00:00.000000Z", randomUUID()]));
  });
});
