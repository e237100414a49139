import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { truncateMailboxReadModel } from "../support/mailbox-read-model.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/** The mailbox's read model is a projection: truncate it, replay the stream, get the same answers. */
describe("replaying the mailbox's events", () => {
  const s = new Stack({ logLevel: "warn" });
  let tk: string;
  const inboxes: { id: string; apiKey: string; email: string }[] = [];
  /** An inbox of a workspace that ended, and the workspace. */
  let ended: { id: string; ws: string; alias: string };

  async function snapshot() {
    const out: Record<string, unknown> = { inboxes: (await s.api("GET", "/v1/inboxes", { key: tk })).body };
    for (const i of inboxes) {
      for (const p of [`/v1/inboxes/${i.id}`, `/v1/inboxes/${i.id}/messages?limit=100`, `/v1/inboxes/${i.id}/drafts`, `/v1/inboxes/${i.id}/lists`]) {
        out[p] = (await s.api("GET", p, { key: tk })).body;
      }
    }
    for (const p of [`/v1/inboxes/${ended.id}`, `/v1/inboxes/${ended.id}/messages`, `/v1/inboxes?workspace=${ended.ws}`, "/v1/domains"]) {
      const r = await s.api("GET", p, { key: tk });
      out[p] = { status: r.status, body: r.body };
    }
    for (const folder of ["inbox", "sent", "starred"]) {
      for (const group of ["", "&group=thread"])
        out[`view ${folder}${group}`] = (await s.api("GET", `/v1/messages?folder=${folder}${group}`, { key: tk })).body;
    }
    out.counts = (await s.api("GET", "/v1/messages/folders/counts", { key: tk })).body;
    return out;
  }

  beforeAll(async () => {
    await s.start();
    const t = await provisionTenant(s);
    tk = t.key.key;
    for (const u of ["one", "two", "three"])
      inboxes.push((await s.api("POST", "/v1/inboxes", { key: tk, body: { username: u, displayName: u.toUpperCase() } })).body);
    const [one, two, three] = inboxes as [(typeof inboxes)[0], (typeof inboxes)[0], (typeof inboxes)[0]];
    await s.api("POST", `/v1/inboxes/${one.id}/addresses`, { key: tk, body: { email: `alias@${s.mailDomain}` } });
    await s.api("PATCH", `/v1/inboxes/${two.id}`, { key: tk, body: { metadata: { team: "x" } } });
    await s.api("DELETE", `/v1/inboxes/${three.id}`, { key: tk });
    const list = (await s.api("POST", `/v1/inboxes/${one.id}/lists`, { key: tk, body: { name: "VIP" } })).body;
    await s.api("POST", `/v1/inboxes/${one.id}/lists/${list.id}/entries`, { key: tk, body: { email: "vip@example.com" } });
    await s.api("POST", `/v1/inboxes/${one.id}/drafts`, { key: tk, body: { to: two.email, subject: "Later" } });
    const sent = (await s.api("POST", `/v1/inboxes/${one.id}/send`, { key: tk, body: { to: two.email, subject: "Hello", plainBody: "hi", verified: true } }))
      .body;
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${two.id}/messages`, { key: tk })).body.messages.length === 1, { timeoutMs: 10_000 });
    const got = (await s.api("GET", `/v1/inboxes/${two.id}/messages`, { key: tk })).body.messages[0];
    await s.api("POST", `/v1/inboxes/${two.id}/reply/${got.id}`, { key: tk, body: { plainBody: "hello back" } });
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${one.id}/messages?direction=inbound`, { key: tk })).body.messages.length === 1, {
      timeoutMs: 10_000,
    });
    await s.api("PATCH", `/v1/inboxes/${one.id}/messages/${sent.id}`, { key: tk, body: { isStarred: true } });
    // A workspace that ends, with an inbox (and an alias) and a domain: the cascade's events rebuild the same answers.
    const ws = (await s.api("POST", "/v1/workspaces", { key: tk, body: { name: "Ending" } })).body.id;
    const doomed = (await s.api("POST", "/v1/inboxes", { key: tk, body: { username: "doomed", workspaceId: ws } })).body;
    const alias = `doomed-alias@${s.mailDomain}`;
    await s.api("POST", `/v1/inboxes/${doomed.id}/addresses`, { key: tk, body: { email: alias } });
    expect((await s.api("POST", "/v1/domains", { key: tk, body: { domain: "doomed.example", workspaceId: ws } })).status).toBe(201);
    await s.api("DELETE", `/v1/workspaces/${ws}`, { key: tk });
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${doomed.id}`, { key: tk })).status === 404, { timeoutMs: 15_000, what: "the cascade" });
    await waitFor(async () => !JSON.stringify((await s.api("GET", "/v1/domains", { key: tk })).body).includes("doomed.example"), {
      timeoutMs: 5_000,
      what: "the domain released",
    });
    ended = { id: doomed.id, ws, alias };
    // Nothing may still be changing when the first snapshot is taken: every send delivered.
    for (const i of [one, two]) {
      await waitFor(
        async () =>
          (await s.api("GET", `/v1/inboxes/${i.id}/messages?direction=outbound`, { key: tk })).body.messages.every(
            (m: { status: string }) => m.status === "delivered",
          ),
        { timeoutMs: 10_000, what: "deliveries settled" },
      );
    }
  });
  afterAll(() => s.stop());

  it("truncate every projection table, restart, replay: identical answers", async () => {
    const before = await snapshot();
    await s.mailbox!.destroy();
    await truncateMailboxReadModel(s);
    await s.startMailbox();
    expect(await snapshot()).toEqual(before);
    // What decisions read came back too: the workspace is closed, its addresses held back from strangers.
    const schema = s.iso.schema("mailbox");
    const c = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await c.connect();
    const closed = await c.query(`select workspace_id from ${schema}.closed_workspaces`);
    expect(closed.rows.map((r) => r.workspace_id)).toEqual([ended.ws]);
    await c.end();
    const stranger = await provisionTenant(s, "Stranger");
    const taken = await s.api("POST", "/v1/inboxes?strict=true", { key: stranger.key.key, body: { username: "doomed" } });
    expect(taken.status).toBe(409);
    expect(taken.body.error).toMatch(/held back/);
    // And the addresses of the inbox deleted on its own (three@) as well.
    expect((await s.api("POST", "/v1/inboxes?strict=true", { key: stranger.key.key, body: { username: "three" } })).status).toBe(409);
  });
});
