import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as folderCountsMigration from "@mam/mailbox/db/migrations/2026-12-07T0100-folder-counts-and-thread-view.ts";
import * as threadParticipantsMigration from "@mam/mailbox/db/migrations/2026-12-07T0300-thread-participants.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

type Item = {
  id: string;
  inboxId: string;
  threadId: string;
  isRead: boolean;
  receivedAt: string;
  threadCount?: number;
  threadUnreadCount?: number;
  participants?: string[];
  labels?: string[];
};
type Inbox = { id: string; apiKey: string; email: string };
const FOLDERS = ["inbox", "sent", "starred", "archived", "trash"] as const;

/**
 * The mailbox view, its counts and the inbox lists read counters and thread rows the
 * projection keeps: they must say exactly what the messages say, through every change,
 * and cursors must walk each list once, in order.
 */
describe("mailbox reads from counters, thread rows and cursors", () => {
  const s = new Stack({ logLevel: "warn" });
  let tk: string;
  let wk: string;
  let a: Inbox;
  let b: Inbox;
  let c: Inbox;

  /** Every row of a list, page by page through nextCursor, and the pages' pagination. */
  async function walk(key: string, path: string, limit = 2) {
    const items: Item[] = [];
    const totals = new Set<number>();
    let cursor: string | null = null;
    const sep = path.includes("?") ? "&" : "?";
    do {
      const r: { status: number; body: any } = await s.api("GET", `${path}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`, { key });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      items.push(...(r.body.messages ?? r.body.drafts));
      totals.add(r.body.pagination.total);
      cursor = r.body.pagination.nextCursor;
    } while (cursor);
    return { items, totals: [...totals] };
  }

  /**
   * Each message's addresses (sender, To, Cc) and labels, read once while it is live (they
   * never change but for "unread", which follows isRead on received mail; a deleted message is
   * not served): the flat list does not carry them.
   */
  const details = new Map<string, { addresses: string[]; labels: string[] }>();
  async function detailsOf(items: Item[]) {
    for (const m of items) {
      if (details.has(m.id)) continue;
      const r = await s.api("GET", `/v1/inboxes/${m.inboxId}/messages/${m.id}`, { key: tk });
      expect(r.status, `details of ${m.id}, read before it was deleted`).toBe(200);
      const labels = (r.body.labels as string[]).filter((l) => l !== "unread");
      details.set(m.id, { addresses: [r.body.fromAddress, ...r.body.toAddresses, ...r.body.cc], labels });
    }
    return details;
  }
  const sortedSet = (xs: string[]) => [...new Set(xs)].sort();

  /**
   * One row per thread, its newest message, with the thread's counts, its participants (distinct
   * lower-cased, sorted, the first 50) and labels: what the window-function query answered.
   */
  async function grouped(flat: Item[]) {
    const known = await detailsOf(flat);
    const out = new Map<string, Item>();
    const addresses = new Map<string, string[]>();
    for (const m of flat) {
      const t = out.get(m.threadId);
      if (!t) out.set(m.threadId, { ...m, threadCount: 1, threadUnreadCount: m.isRead ? 0 : 1, labels: [] });
      else out.set(m.threadId, { ...t, threadCount: t.threadCount! + 1, threadUnreadCount: t.threadUnreadCount! + (m.isRead ? 0 : 1) });
      const d = known.get(m.id)!;
      addresses.set(m.threadId, [...(addresses.get(m.threadId) ?? []), ...d.addresses.map((a) => a.toLowerCase())]);
      const labels = m.isRead || !d.labels.includes("received") ? d.labels : [...d.labels, "unread"];
      out.get(m.threadId)!.labels = sortedSet([...out.get(m.threadId)!.labels!, ...labels]);
    }
    return [...out.values()].map((t) => ({ ...t, participants: sortedSet(addresses.get(t.threadId)!).slice(0, 50) }));
  }

  /** Counts, totals and thread rows of one key's scope agree with its messages, folder by folder. */
  async function expectConsistent(key: string, inboxes: Inbox[]) {
    const counts = (await s.api("GET", "/v1/messages/folders/counts", { key })).body;
    for (const folder of FOLDERS) {
      const flat = await walk(key, `/v1/messages?folder=${folder}`);
      const ids = flat.items.map((m) => m.id);
      expect(new Set(ids).size, `${folder}: each message once`).toBe(ids.length);
      const times = flat.items.map((m) => m.receivedAt);
      expect([...times].sort().reverse(), `${folder}: newest first`).toEqual(times);
      expect(flat.totals, `${folder} total`).toEqual([flat.items.length]);
      expect(counts[folder].total, `${folder} count`).toBe(flat.items.length);
      if (folder === "inbox") expect(counts.inbox.unread).toBe(flat.items.filter((m) => !m.isRead).length);
      const threads = await walk(key, `/v1/messages?folder=${folder}&group=thread`);
      expect(threads.items, `${folder} by thread`).toEqual(await grouped(flat.items));
      expect(threads.totals, `${folder} threads total`).toEqual([threads.items.length]);
      // A page past the end is empty and still counts the whole list (the total then comes from the counters alone).
      for (const [group, all] of [
        ["", flat.items.length],
        ["&group=thread", threads.items.length],
      ] as const) {
        const past = await s.api("GET", `/v1/messages?folder=${folder}${group}&offset=${all}`, { key });
        expect(past.body.messages, `${folder}${group} past the end`).toEqual([]);
        expect(past.body.pagination.total, `${folder}${group} total past the end`).toBe(all);
      }
    }
    for (const i of inboxes) {
      for (const direction of ["", "?direction=inbound", "?direction=outbound"]) {
        const list = await walk(key, `/v1/inboxes/${i.id}/messages${direction}`);
        expect(list.totals, `${i.email}${direction} total`).toEqual([list.items.length]);
      }
    }
  }
  const expectAllConsistent = async () => {
    await expectConsistent(tk, [a, b, c]);
    await expectConsistent(a.apiKey, [a]);
    await expectConsistent(wk, [c]);
  };

  async function send(from: Inbox, to: Inbox, subject: string, more: object = {}) {
    const r = await s.api("POST", `/v1/inboxes/${from.id}/send`, { key: tk, body: { to: to.email, subject, plainBody: subject, verified: true, ...more } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body as { id: string; threadId: string };
  }
  const received = async (i: Inbox) => (await s.api("GET", `/v1/inboxes/${i.id}/messages?direction=inbound&limit=100`, { key: tk })).body.messages as Item[];
  const untilReceived = (i: Inbox, n: number) =>
    waitFor(async () => (await received(i)).length === n, { timeoutMs: 10_000, what: `${n} messages in ${i.email}` });
  async function reply(i: Inbox, to: Item, body: object) {
    const r = await s.api("POST", `/v1/inboxes/${i.id}/reply/${to.id}`, { key: tk, body });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body as { id: string };
  }
  /** Thirty outside addresses, one letter apart per message: "x00@example.com"... */
  const copied = (letter: string) => Array.from({ length: 30 }, (_, n) => `${letter}${String(n).padStart(2, "0")}@example.com`);
  /** a's copies of the widely copied thread: its first message (sent) and c's reply (received). */
  let wide: { sent: string; received: Item };

  beforeAll(async () => {
    await s.start();
    tk = (await provisionTenant(s)).key.key;
    a = (await s.api("POST", "/v1/inboxes", { key: tk, body: { username: "scale-a" } })).body;
    b = (await s.api("POST", "/v1/inboxes", { key: tk, body: { username: "scale-b" } })).body;
    const ws = (await s.api("POST", "/v1/workspaces", { key: tk, body: { name: "Other" } })).body.id;
    wk = (await s.api("POST", `/v1/workspaces/${ws}/keys`, { key: tk, body: {} })).body.key;
    c = (await s.api("POST", "/v1/inboxes", { key: tk, body: { username: "scale-c", workspaceId: ws } })).body;
    // A thread copied to more outside addresses than a thread row keeps: in a's sent folder its
    // two messages name 62 participants (a, c, x00-x29, z00-z29), the second over the first's 32.
    const first = await send(a, c, "copied widely", { cc: copied("x") });
    await untilReceived(c, 1);
    await reply(c, (await received(c))[0]!, { plainBody: "copied back", cc: copied("y"), verified: true });
    await untilReceived(a, 1);
    wide = { sent: first.id, received: (await received(a))[0]! };
    await reply(a, wide.received, { plainBody: "copied again", cc: copied("z"), verified: true });
    // A mixed history: threads of one and of several messages, both ways, across workspaces.
    for (const n of [1, 2, 3]) await send(a, b, `a to b ${n}`);
    await send(a, c, "a to c");
    await send(c, a, "c to a");
    await untilReceived(b, 3);
    await untilReceived(a, 2);
    await untilReceived(c, 3);
    await reply(b, (await received(b)).at(-1)!, { plainBody: "back" });
    await untilReceived(a, 3);
    await reply(a, (await received(a))[0]!, { plainBody: "and again" });
    await untilReceived(b, 4);
  });
  afterAll(() => s.stop());

  it("counts, totals and thread rows stay exact through receive, send, flags, delete and inbox deletion", async () => {
    await expectAllConsistent();
    const sentThreads = (await walk(tk, "/v1/messages?folder=sent&group=thread")).items;
    expect(Math.max(...sentThreads.map((t) => t.participants!.length)), "a thread of more participants than kept").toBe(50);
    const inA = await received(a);
    const inB = await received(b);
    const patch = (i: Inbox, id: string, body: object) => s.api("PATCH", `/v1/inboxes/${i.id}/messages/${id}`, { key: tk, body });
    await patch(a, inA[0]!.id, { isRead: true });
    await patch(b, inB[0]!.id, { isRead: true, isStarred: true });
    await patch(b, inB[1]!.id, { isArchived: true });
    await patch(b, inB[1]!.id, { isStarred: true });
    // Both ways in one starred thread: its row's labels are those of either message.
    await patch(a, wide.sent, { isStarred: true });
    await patch(a, wide.received.id, { isStarred: true });
    await expectAllConsistent();
    await patch(a, inA[0]!.id, { isRead: false });
    await patch(b, inB[1]!.id, { isArchived: false });
    expect((await s.api("DELETE", `/v1/inboxes/${b.id}/messages/${inB[0]!.id}`, { key: tk })).status).toBe(200);
    const sentByA = (await s.api("GET", `/v1/inboxes/${a.id}/messages?direction=outbound`, { key: tk })).body.messages as Item[];
    expect((await s.api("DELETE", `/v1/inboxes/${a.id}/messages/${sentByA[0]!.id}`, { key: tk })).status).toBe(200);
    await expectAllConsistent();
    const before = (await s.api("GET", "/v1/messages/folders/counts", { key: tk })).body;
    const bInbox = (await s.api("GET", `/v1/messages/folders/counts?inboxId=${b.id}`, { key: tk })).body;
    expect(bInbox.inbox.total).toBeGreaterThan(0);
    expect((await s.api("DELETE", `/v1/inboxes/${b.id}`, { key: tk })).status).toBe(200);
    const after = (await s.api("GET", "/v1/messages/folders/counts", { key: tk })).body;
    // The deleted inbox's mail leaves the counts, and only its mail.
    for (const f of FOLDERS) expect(after[f].total, f).toBe(before[f].total - bInbox[f].total);
    await expectConsistent(tk, [a, c]);
  });

  it("a deployment upgrading in place: the migrations' backfills give the answers the projection kept", async () => {
    const byThread = async () => {
      const out: Record<string, unknown> = {};
      for (const folder of FOLDERS) out[folder] = await walk(tk, `/v1/messages?folder=${folder}&group=thread`);
      return out;
    };
    const answers = async () => {
      const out: Record<string, unknown> = { counts: (await s.api("GET", "/v1/messages/folders/counts", { key: tk })).body, byThread: await byThread() };
      for (const folder of FOLDERS) out[folder] = (await walk(tk, `/v1/messages?folder=${folder}`)).items;
      for (const i of [a, c]) out[i.id] = await walk(tk, `/v1/inboxes/${i.id}/messages`);
      return out;
    };
    const db = s.mailbox!.ctx.db;
    // A sender stored in capitals (the API and SMTP lower-case addresses; a row stored before
    // they did may not be): its thread still names it once, lower-cased.
    const wideSent = (await walk(tk, "/v1/messages?folder=sent")).items.find((m) => m.id === wide.sent)!;
    await sql`update messages set from_address = upper(from_address) where message_id = ${wideSent.id}`.execute(db);
    const before = await answers();
    await threadParticipantsMigration.down(db);
    await folderCountsMigration.down(db);
    await folderCountsMigration.up(db);
    await threadParticipantsMigration.up(db);
    expect(await answers()).toEqual(before);
    // And recomputed by the projection from the messages (a flag set and cleared): the same threads.
    const patch = (body: object) => s.api("PATCH", `/v1/inboxes/${a.id}/messages/${wideSent.id}`, { key: tk, body });
    expect((await patch({ isArchived: true })).status).toBe(200);
    expect((await patch({ isArchived: false })).status).toBe(200);
    expect(await byThread()).toEqual(before.byThread);
  });

  it("a cursor walks a folder once, in order, while mail arrives between pages, for each kind of key", async () => {
    for (const n of [1, 2]) await send(c, a, `c to a, more ${n}`);
    for (const [key, from, to] of [
      [tk, a, c],
      [a.apiKey, a, c],
      [wk, c, a],
    ] as const) {
      const all = (await walk(key, "/v1/messages?folder=sent", 100)).items.map((m) => m.id);
      expect(all.length).toBeGreaterThan(2);
      const seen: string[] = [];
      let r = await s.api("GET", "/v1/messages?folder=sent&limit=2", { key });
      seen.push(...r.body.messages.map((m: Item) => m.id));
      while (r.body.pagination.nextCursor) {
        // Newer than the page served: it belongs before the cursor, never after it.
        await send(from, to, `between pages ${seen.length}`);
        r = await s.api("GET", `/v1/messages?folder=sent&limit=2&cursor=${r.body.pagination.nextCursor}`, { key });
        expect(r.status).toBe(200);
        seen.push(...r.body.messages.map((m: Item) => m.id));
      }
      expect(seen).toEqual(all);
    }
  });

  it("a cursor of another list, of another filter, garbage, or with an offset is a 400", async () => {
    const cursorOf = async (path: string) => (await s.api("GET", path, { key: tk })).body.pagination.nextCursor as string;
    const sent = await cursorOf("/v1/messages?folder=sent&limit=1");
    const byThread = await cursorOf("/v1/messages?folder=sent&group=thread&limit=1");
    const inbound = await cursorOf(`/v1/inboxes/${a.id}/messages?direction=inbound&limit=1`);
    expect(sent && byThread && inbound).toBeTruthy();
    for (const path of [
      `/v1/messages?folder=inbox&cursor=${sent}`,
      `/v1/messages?folder=sent&group=thread&cursor=${sent}`,
      `/v1/messages?folder=sent&cursor=${byThread}`,
      `/v1/messages?folder=sent&inboxId=${a.id}&cursor=${sent}`,
      `/v1/messages?folder=sent&cursor=${sent}&offset=1`,
      "/v1/messages?folder=sent&cursor=bm90LWEtY3Vyc29y",
      "/v1/messages?folder=sent&cursor=***",
      `/v1/inboxes/${a.id}/messages?cursor=${inbound}`,
      `/v1/inboxes/${a.id}/messages?direction=outbound&cursor=${inbound}`,
      `/v1/inboxes/${a.id}/drafts?cursor=${inbound}`,
    ]) {
      const r = await s.api("GET", path, { key: tk });
      expect(r.status, path).toBe(400);
      expect(r.body.code, path).toBe("VALIDATION_ERROR");
    }
  });
});
