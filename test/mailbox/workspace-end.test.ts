import { createHash, randomUUID } from "node:crypto";
import pg from "pg";
import { jetstream } from "@nats-io/jetstream";
import { connect, headers } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventSubject } from "@mam/contracts/envelope.ts";
import { INGEST_META_HEADER, ingestStreamName, ingestSubject, type IngestMeta } from "@mam/contracts/ingest.ts";
import { MAILBOX_CONTEXT } from "@mam/contracts/mailbox-events.ts";
import { INGEST_DURABLE } from "@mam/mailbox/delivery/inbound.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { readDeliveryReport } from "@mam/mailbox/delivery/bounces.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { SmtpTranscript } from "@mam/testing/smtp-transcript.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

type Tenant = Awaited<ReturnType<typeof provisionTenant>>;
type Created = { id: string; email: string; apiKey: string; workspaceId: string };

/** Deleting a workspace ends everything in it, through every key and over SMTP; another workspace goes on. */
describe("the end of a workspace", () => {
  // Where mail leaves: the failure notices owed to senders of mail accepted too late.
  const relay = new SmtpSink();
  const mailboxEnv: Record<string, string> = { DELIVERY_RETRY_POLL_MS: "100" };
  const s = new Stack({ logLevel: "warn", smtp: true, mailboxEnv });
  const D = s.mailDomain;
  let t: Tenant;
  let stranger: Tenant;
  let tk: string;
  let ending: { ws: string; wk: string; inbox: Created; alias: string; listId: string; draftId: string; messageId: string; threadId: string };
  let staying: { ws: string; wk: string; inbox: Created };
  let domainId: string;

  async function rcpt(address: string): Promise<string> {
    const c = await SmtpTranscript.open(s.smtp!.port);
    try {
      await c.reply();
      await c.command("EHLO test.example");
      await c.command("MAIL FROM:<someone@example.com>");
      return await c.command(`RCPT TO:<${address}>`);
    } finally {
      c.close();
    }
  }

  /** Puts accepted mail on the ingest stream as smtp-ingress does (publishIngest); answers its stream sequence. */
  async function publishIngest(meta: IngestMeta, raw: Buffer, msgID = meta.dedupeKey): Promise<number> {
    const nc = await connect({ servers: s.iso.urls.NATS_URL });
    try {
      const h = headers();
      h.set(INGEST_META_HEADER, JSON.stringify(meta));
      return (await jetstream(nc).publish(ingestSubject(s.iso.prefix), raw, { msgID, headers: h })).seq;
    } finally {
      await nc.close();
    }
  }

  async function workspaceWithKey(name: string): Promise<{ ws: string; wk: string }> {
    const ws = (await s.api("POST", "/v1/workspaces", { key: tk, body: { name } })).body.id;
    const wk = (await s.api("POST", `/v1/workspaces/${ws}/keys`, { key: tk, body: {} })).body.key;
    return { ws, wk };
  }

  beforeAll(async () => {
    mailboxEnv.SMTP_RELAY_URL = await relay.start();
    await s.start();
    t = await provisionTenant(s, "Ender");
    stranger = await provisionTenant(s, "Stranger");
    tk = t.key.key;
    const e = await workspaceWithKey("Ending");
    const k = await workspaceWithKey("Staying");
    const inbox: Created = (await s.api("POST", "/v1/inboxes", { key: tk, body: { username: "ending", workspaceId: e.ws } })).body;
    const alias = `ending-alias@${D}`;
    expect((await s.api("POST", `/v1/inboxes/${inbox.id}/addresses`, { key: tk, body: { email: alias, primary: false } })).status).toBe(201);
    const stay: Created = (await s.api("POST", "/v1/inboxes", { key: k.wk, body: { username: "staying" } })).body;
    const list = (await s.api("POST", `/v1/inboxes/${inbox.id}/lists`, { key: tk, body: { name: "VIP" } })).body;
    const draft = (await s.api("POST", `/v1/inboxes/${inbox.id}/drafts`, { key: tk, body: { to: stay.email, subject: "Later" } })).body;
    const domain = await s.api("POST", "/v1/domains", { key: e.wk, body: { domain: "ending.example" } });
    expect(domain.status).toBe(201);
    domainId = domain.body.id;
    const sent = (await s.api("POST", `/v1/inboxes/${inbox.id}/send`, { key: tk, body: { to: stay.email, subject: "Hello", plainBody: "hi", verified: true } }))
      .body;
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${stay.id}/messages`, { key: k.wk })).body.messages?.length === 1, {
      timeoutMs: 10_000,
      what: "the local delivery",
    });
    ending = { ...e, inbox, alias, listId: list.id, draftId: draft.id, messageId: sent.id, threadId: sent.threadId };
    staying = { ...k, inbox: stay };
    for (const a of [inbox.email, alias, stay.email]) await waitFor(async () => (await rcpt(a)).startsWith("250"), { timeoutMs: 10_000, what: `${a} known` });

    expect((await s.api("DELETE", `/v1/workspaces/${e.ws}`, { key: tk })).status).toBeLessThan(300);
    // The mailbox hears it through its consumer: eventually, not in the DELETE's answer.
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${inbox.id}`, { key: tk })).status === 404, { timeoutMs: 15_000, what: "the cascade" });
  });
  afterAll(async () => {
    await s.stop();
    await relay.stop();
  });

  it("the tenant key finds nothing of it: the inbox, its messages, thread, lists, drafts, its domain", async () => {
    const { inbox } = ending;
    const paths = [
      `/v1/inboxes/${inbox.id}`,
      `/v1/inboxes/${inbox.id}/messages`,
      `/v1/inboxes/${inbox.id}/messages/${ending.messageId}`,
      `/v1/inboxes/${inbox.id}/threads/${ending.threadId}`,
      `/v1/inboxes/${inbox.id}/lists`,
      `/v1/inboxes/${inbox.id}/lists/${ending.listId}`,
      `/v1/inboxes/${inbox.id}/drafts`,
      `/v1/inboxes/${inbox.id}/drafts/${ending.draftId}`,
      "/v1/domains/ending.example",
    ];
    for (const p of paths) {
      const r = await s.api("GET", p, { key: tk });
      expect(r.status, p).toBe(404);
      expect(r.body.code, p).toBe("NOT_FOUND");
    }
    const listed = (await s.api("GET", "/v1/inboxes", { key: tk })).body.inboxes.map((i: { id: string }) => i.id);
    expect(listed).toContain(staying.inbox.id);
    expect(listed).not.toContain(inbox.id);
    expect((await s.api("GET", `/v1/inboxes?workspace=${ending.ws}`, { key: tk })).body.inboxes).toEqual([]);
    const domains = (await s.api("GET", "/v1/domains", { key: tk })).body.domains.map((d: { domain: string }) => d.domain);
    expect(domains).not.toContain("ending.example");
    const sentView = (await s.api("GET", "/v1/messages?folder=sent", { key: tk })).body.messages.map((m: { inboxId: string }) => m.inboxId);
    expect(sentView).not.toContain(inbox.id);
  });

  it("its domain is released with its private DKIM key; the name may be claimed again", async () => {
    const c = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await c.connect();
    try {
      const keys = await c.query(`select key_ref from ${s.iso.schema("mailbox")}.dkim_keys where key_ref = $1`, [domainId]);
      expect(keys.rows).toEqual([]);
    } finally {
      await c.end();
    }
    const again = await s.api("POST", "/v1/domains", { key: staying.wk, body: { domain: "ending.example" } });
    expect(again.status).toBe(201);
    expect(again.body.workspaceId).toBe(staying.ws);
  });

  it("and changes nothing in it: send, draft, list, alias, a new inbox: 404", async () => {
    const { inbox } = ending;
    const writes: [string, string, unknown][] = [
      ["POST", `/v1/inboxes/${inbox.id}/send`, { to: staying.inbox.email, subject: "Still here?", plainBody: "x", verified: true }],
      ["POST", `/v1/inboxes/${inbox.id}/drafts`, { to: staying.inbox.email, subject: "x" }],
      ["POST", `/v1/inboxes/${inbox.id}/lists`, { name: "Again" }],
      ["POST", `/v1/inboxes/${inbox.id}/addresses`, { email: `late-alias@${D}` }],
      ["PATCH", `/v1/inboxes/${inbox.id}`, { displayName: "Ghost" }],
      ["POST", "/v1/inboxes", { username: "late", workspaceId: ending.ws }],
      ["POST", "/v1/domains", { domain: "late.example", workspaceId: ending.ws }],
    ];
    for (const [method, path, body] of writes) {
      const r = await s.api(method, path, { key: tk, body });
      expect(r.status, `${method} ${path}`).toBe(404);
    }
    expect((await s.api("GET", "/v1/inboxes", { key: tk })).body.inboxes.map((i: { username: string }) => i.username)).not.toContain("late");
  });

  it("its wk_ and ak_ keys are refused: 401", async () => {
    for (const key of [ending.wk, ending.inbox.apiKey]) {
      await waitFor(async () => (await s.api("GET", "/v1/inboxes", { key })).status === 401, { timeoutMs: 10_000, what: "key revoked" });
      expect((await s.api("GET", `/v1/inboxes/${ending.inbox.id}`, { key })).status).toBe(401);
      expect((await s.api("POST", "/v1/inboxes", { key, body: { username: "via-old-key" } })).status).toBe(401);
    }
  });

  it("its addresses refuse mail over SMTP: 550 5.1.1", async () => {
    for (const a of [ending.inbox.email, ending.alias]) {
      await waitFor(async () => /^550 5\.1\.1/.test(await rcpt(a)), { timeoutMs: 10_000, what: `${a} refused` });
    }
  });

  it("another workspace of the same tenant goes on: its inbox, its mail, its key, new inboxes", async () => {
    const got = await s.api("GET", `/v1/inboxes/${staying.inbox.id}`, { key: staying.wk });
    expect(got.status).toBe(200);
    expect((await s.api("GET", `/v1/inboxes/${staying.inbox.id}/messages`, { key: staying.inbox.apiKey })).body.messages).toHaveLength(1);
    expect(await rcpt(staying.inbox.email)).toMatch(/^250/);
    const fresh = await s.api("POST", "/v1/inboxes", { key: staying.wk, body: { username: "after-the-end" } });
    expect(fresh.status).toBe(201);
    expect(fresh.body.workspaceId).toBe(staying.ws);
  });

  /**
   * smtp-ingress's directory lists an address until InboxDeleted reaches it: mail it accepts
   * in that window reaches the ingest stream naming the ended inbox. Published here as
   * smtp-ingress publishes it (publishIngest), to reach the window without racing for it.
   */
  // Small bytes go into the filing's commit; large ones (over 256 KiB) are stored before it.
  it.each([
    ["small", 10],
    ["large", 300 * 1024],
  ])(
    "mail accepted for it after the cascade is filed nowhere, stored nowhere, published nowhere, acknowledged, and its sender told once (%s)",
    async (_size, bodyBytes) => {
      const queueId = `late-${randomUUID()}`;
      const subject = `Too late ${queueId}`;
      const raw = Buffer.from(
        [
          "From: someone@example.com",
          `To: ${ending.inbox.email}, ${staying.inbox.email}`,
          `Subject: ${subject}`,
          `Message-ID: <${queueId}@example.com>`,
          "",
          // Lines of at most 998 characters (RFC 5322), each different from every other message's.
          ...Array.from({ length: Math.ceil(bodyBytes / 80) }, (_, i) => `${queueId} ${i}`.padEnd(78, ".")),
          "",
        ].join("\r\n"),
      );
      const recipient = (inbox: Created) => ({ address: inbox.email, tenantId: t.tenant.id, workspaceId: inbox.workspaceId, inboxId: inbox.id });
      const meta: IngestMeta = {
        v: 1,
        dedupeKey: queueId,
        queueId,
        receivedAt: new Date().toISOString(),
        remoteAddress: "127.0.0.1",
        helo: "test.example",
        mailFrom: "someone@example.com",
        recipients: [recipient(ending.inbox), recipient(staying.inbox)],
        returnPaths: [],
        size: raw.length,
        rawObject: null,
      };
      expect(ending.inbox.workspaceId).toBe(ending.ws);
      const seq = await publishIngest(meta, raw);
      // The live recipient of the same message gets it.
      const stayingSubjects = async () =>
        ((await s.api("GET", `/v1/inboxes/${staying.inbox.id}/messages`, { key: staying.wk })).body.messages as { subject: string }[]).map((m) => m.subject);
      await waitFor(async () => (await stayingSubjects()).includes(subject), { timeoutMs: 10_000, intervalMs: 100, what: "the live recipient's copy" });
      // The ingest message is acknowledged, not left to be redelivered.
      await waitFor(
        () =>
          s.iso.jetstream(async (jsm) => {
            const c = await jsm.consumers.info(ingestStreamName(s.iso.prefix), INGEST_DURABLE);
            return c.ack_floor.stream_seq >= seq && c.num_ack_pending === 0 && c.num_pending === 0;
          }),
        { timeoutMs: 10_000, what: "the ingest message acknowledged" },
      );
      // Acknowledged means committed: nothing in the ended inbox, none of its bytes in the ended
      // workspace, and no MessageReceived in its outbox (which keeps every event, published or
      // not), so none in the stream either. The same queries find the live recipient's.
      const c = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
      await c.connect();
      try {
        const schema = s.iso.schema("mailbox");
        const filed = await c.query(`select message_id from ${schema}.messages where inbox_id = $1 and direction = 'inbound'`, [ending.inbox.id]);
        expect(filed.rows).toEqual([]);
        const hash = createHash("sha256").update(raw).digest("hex");
        const stored = async (workspaceId: string) =>
          (await c.query(`select size from ${schema}.blobs where workspace_id = $1 and hash = $2`, [workspaceId, hash])).rows;
        expect(await stored(ending.ws)).toEqual([]);
        expect(await stored(staying.ws)).toEqual([{ size: raw.length }]);
        const received = (workspaceId: string) => eventSubject("", { context: MAILBOX_CONTEXT, tenantId: t.tenant.id, workspaceId, type: "MessageReceived" });
        const events = async (workspaceId: string) => (await c.query(`select event_id from ${schema}.outbox where subject = $1`, [received(workspaceId)])).rows;
        expect(await events(ending.ws)).toEqual([]);
        expect((await events(staying.ws)).length).toBeGreaterThan(0);
      } finally {
        await c.end();
      }
      // Said where an operator looks: the sender was told 250.
      expect(s.logs.entries().some((e) => e.msg === "accepted mail for an inbox that no longer takes mail not filed" && e.queueId === queueId)).toBe(true);
      // And the sender is told the ended inbox's address failed, once, however often the message is handled.
      const notices = () => relay.received.filter((m) => m.from === "" && m.raw.includes(`X-Queue-ID: ${queueId}`));
      await waitFor(() => notices().length > 0, { timeoutMs: 10_000, what: "the failure notice" });
      expect(notices()[0]!.to).toEqual(["someone@example.com"]);
      expect(readDeliveryReport(notices()[0]!.raw)?.recipients).toEqual([ending.inbox.email]);
      // The same message again (as after a crash before its acknowledgement; JetStream would drop the same id).
      const again = await publishIngest(meta, raw, `${queueId}-again`);
      await waitFor(
        () =>
          s.iso.jetstream(async (jsm) => {
            const c = await jsm.consumers.info(ingestStreamName(s.iso.prefix), INGEST_DURABLE);
            return c.ack_floor.stream_seq >= again && c.num_ack_pending === 0;
          }),
        { timeoutMs: 10_000, what: "the second handling acknowledged" },
      );
      await new Promise((r) => setTimeout(r, 500));
      expect(notices()).toHaveLength(1);
    },
  );

  it("mail for an inbox this read model does not know at all (being rebuilt, say) is not dropped: it is tried again", async () => {
    const queueId = `unknown-${randomUUID()}`;
    const raw = Buffer.from(`From: someone@example.com\r\nTo: ghost@${s.mailDomain}\r\nSubject: ${queueId}\r\n\r\nhello\r\n`);
    const meta: IngestMeta = {
      v: 1,
      dedupeKey: queueId,
      queueId,
      receivedAt: new Date().toISOString(),
      remoteAddress: "127.0.0.1",
      helo: "test.example",
      mailFrom: "someone@example.com",
      recipients: [{ address: `ghost@${s.mailDomain}`, tenantId: t.tenant.id, workspaceId: staying.ws, inboxId: randomUUID() }],
      returnPaths: [],
      size: raw.length,
      rawObject: null,
    };
    const seq = await publishIngest(meta, raw);
    // Handed back to the server for a later try (after the tries in place), never acknowledged.
    await waitFor(async () => s.logs.entries().some((e) => e.msg === "event handling failed; will retry later" && e.seq === seq), {
      timeoutMs: 15_000,
      what: "the filing handed back for a later try",
    });
    const info = await s.iso.jetstream((jsm) => jsm.consumers.info(ingestStreamName(s.iso.prefix), INGEST_DURABLE));
    expect(info.ack_floor.stream_seq).toBeLessThan(seq);
    expect(s.logs.entries().some((e) => e.msg === "accepted mail for an inbox that no longer takes mail not filed" && e.queueId === queueId)).toBe(false);
    // Done looking: out of the stream, so it is not tried for the rest of the file.
    await s.iso.jetstream((jsm) => jsm.streams.deleteMessage(ingestStreamName(s.iso.prefix), seq));
  });

  it("its addresses are held back from other tenants; the same tenant may take them again", async () => {
    const taken = await s.api("POST", "/v1/inboxes?strict=true", { key: stranger.key.key, body: { username: "ending" } });
    expect(taken.status).toBe(409);
    expect(taken.body.code).toBe("USERNAME_TAKEN");
    expect(taken.body.error).toMatch(/held back/);
    const mine = await s.api("POST", "/v1/inboxes?strict=true", { key: staying.wk, body: { username: "ending" } });
    expect(mine.status).toBe(201);
    expect(mine.body.workspaceId).toBe(staying.ws);
  });

  it("an inbox created while the workspace is being deleted does not survive it", async () => {
    const w = await workspaceWithKey("Racing");
    // Four callers keep creating inboxes in the workspace (tk_ and wk_ keys) until the delete has answered.
    let done = false;
    let n = 0;
    const results: { status: number; body: Created }[] = [];
    const racer = async (key: string, workspaceId?: string) => {
      while (!done) results.push(await s.api("POST", "/v1/inboxes", { key, body: { username: `racer-${n++}`, workspaceId } }));
    };
    const racers = [racer(tk, w.ws), racer(w.wk), racer(tk, w.ws), racer(w.wk)];
    await waitFor(() => results.some((r) => r.status === 201), { timeoutMs: 10_000, what: "a first inbox in the workspace" });
    expect((await s.api("DELETE", `/v1/workspaces/${w.ws}`, { key: tk })).status).toBeLessThan(300);
    done = true;
    await Promise.all(racers);
    // Each create either lost to the delete (404, or 401 for the revoked wk_ key) or made an inbox the cascade ends.
    for (const r of results) expect([201, 401, 404]).toContain(r.status);
    const made = results.filter((r) => r.status === 201).map((r) => r.body);
    for (const inbox of made) {
      await waitFor(async () => (await s.api("GET", `/v1/inboxes/${inbox.id}`, { key: tk })).status === 404, {
        timeoutMs: 15_000,
        what: `${inbox.email} ended`,
      });
      await waitFor(async () => /^550 5\.1\.1/.test(await rcpt(inbox.email)), { timeoutMs: 10_000, what: `${inbox.email} refused` });
    }
    expect((await s.api("GET", `/v1/inboxes?workspace=${w.ws}`, { key: tk })).body.inboxes).toEqual([]);
  });

  it("is finished when the mailbox was down as the workspace was deleted (the event waits for its consumer)", async () => {
    const w = await workspaceWithKey("Interrupted");
    const inbox: Created = (await s.api("POST", "/v1/inboxes", { key: w.wk, body: { username: "interrupted" } })).body;
    await waitFor(async () => (await rcpt(inbox.email)).startsWith("250"), { timeoutMs: 10_000, what: "address known" });
    await s.mailbox!.destroy();
    expect((await s.api("DELETE", `/v1/workspaces/${w.ws}`, { key: tk })).status).toBeLessThan(300);
    await s.startMailbox();
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${inbox.id}`, { key: tk })).status === 404, { timeoutMs: 15_000, what: "the cascade" });
    await waitFor(async () => /^550 5\.1\.1/.test(await rcpt(inbox.email)), { timeoutMs: 10_000, what: "address refused" });
    expect((await s.api("GET", `/v1/inboxes/${staying.inbox.id}`, { key: tk })).status).toBe(200);
  });
});
