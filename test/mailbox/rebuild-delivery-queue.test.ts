import { setTimeout as delay } from "node:timers/promises";
import nodemailer from "nodemailer";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { mam } from "../cli/run-cli.ts";
import { dsn } from "../support/dsn.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/**
 * A message waiting in the retry queue (the relay said 451) while `mam rebuild mailbox`
 * replays the read model: the queue does not take the emptied model for the truth (the
 * message not replayed yet is not "gone", its recipients not "pending" again). It is still
 * queued once the rebuild is done, and delivered exactly once when the relay accepts. A
 * bounce report about a message not replayed yet is read again later, not dropped.
 */
describe("the delivery queue across a mailbox rebuild", () => {
  const relay = new SmtpSink();
  let s: Stack;
  let db: pg.Client;

  beforeAll(async () => {
    const relayUrl = await relay.start();
    // Retries an hour apart: the row is due only when the test says so.
    s = new Stack({ logLevel: "silent", smtp: true, mailboxEnv: { SMTP_RELAY_URL: relayUrl, DELIVERY_RETRY_DELAYS_S: "3600", DELIVERY_RETRY_POLL_MS: "100" } });
    await s.start();
    db = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await db.connect();
  }, 60_000);
  afterAll(async () => {
    await db?.end();
    await s?.stop();
    await relay.stop();
  });

  it("keeps a deferred message queued through the replay and delivers it once afterwards", { timeout: 90_000 }, async () => {
    const mailbox = s.iso.schema("mailbox");
    const t = await provisionTenant(s);
    const inbox = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "patient" } })).body;
    relay.greylist.add("later@example.org");
    const sent = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, {
      key: inbox.apiKey,
      body: { to: "later@example.org", subject: "across a rebuild", plainBody: "x", verified: true },
    });
    expect(sent.status).toBe(200);
    const queued = async () => (await db.query(`select tenant_id, lease from ${mailbox}.delivery_queue where message_id = $1`, [sent.body.id])).rows;
    await waitFor(async () => (await queued()).length === 1 && relay.rcptTries.get("later@example.org") === 1, {
      timeoutMs: 15_000,
      what: "the first try deferred",
    });
    const tenantId = (await queued())[0].tenant_id as string;

    // The tenant's events wait for its lock in the replay: the rebuild stays where its
    // model lacks this message (and its outcomes) for as long as the test holds it.
    const holder = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await holder.connect();
    await holder.query("select pg_advisory_lock(hashtextextended($1, 0))", [`mailbox:${tenantId}`]);
    let rebuilt: ReturnType<typeof mam> | undefined;
    try {
      rebuilt = mam(s, ["rebuild", "mailbox"], { MAM_KEY: s.operatorKey });
      await waitFor(
        async () => (await db.query(`select 1 from ${mailbox}.projection_checkpoint where projection = 'mailbox-read-model@rebuild'`)).rows.length === 1,
        { timeoutMs: 30_000, what: "the rebuild started" },
      );
      expect((await db.query(`select 1 from ${mailbox}.messages where message_id = $1`, [sent.body.id])).rows).toHaveLength(0);
      // Due now, mid-replay: the queue polls every 100 ms; many of its ticks pass meanwhile.
      await db.query(`update ${mailbox}.delivery_queue set next_try_at = now() where message_id = $1`, [sent.body.id]);
      await delay(2_000);
      expect(await queued()).toHaveLength(1);
      expect(relay.rcptTries.get("later@example.org")).toBe(1);
    } finally {
      await holder.end();
    }
    const done = await rebuilt!;
    expect(done.code, done.stderr).toBe(0);

    await waitFor(() => relay.received.some((m) => m.to.includes("later@example.org")), { timeoutMs: 30_000, what: "the retry accepted" });
    await waitFor(async () => (await queued()).length === 0, { timeoutMs: 30_000, what: "the queue let go" });
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${inbox.id}/messages/${sent.body.id}`, { key: inbox.apiKey })).body.status === "delivered", {
      timeoutMs: 30_000,
      what: "delivered",
    });
    expect(relay.received.filter((m) => m.to.includes("later@example.org"))).toHaveLength(1);
  });

  it("records a bounce report that arrives mid-replay once the message is replayed", { timeout: 90_000 }, async () => {
    const mailbox = s.iso.schema("mailbox");
    const t = await provisionTenant(s, "Bounced");
    const inbox = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "bounced" } })).body;
    const sent = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, {
      key: inbox.apiKey,
      body: { to: "gone@example.org", subject: "will bounce", plainBody: "x", verified: true },
    });
    expect(sent.status).toBe(200);
    const status = async () => (await s.api("GET", `/v1/inboxes/${inbox.id}/messages/${sent.body.id}`, { key: inbox.apiKey })).body.status;
    await waitFor(async () => (await status()) === "delivered", { timeoutMs: 15_000, what: "delivered to the relay" });
    const returnPath = relay.received.find((m) => m.to.includes("gone@example.org"))!.from;

    const holder = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await holder.connect();
    await holder.query("select pg_advisory_lock(hashtextextended($1, 0))", [`mailbox:${t.tenant.id}`]);
    let rebuilt: ReturnType<typeof mam> | undefined;
    try {
      rebuilt = mam(s, ["rebuild", "mailbox"], { MAM_KEY: s.operatorKey });
      await waitFor(
        async () => (await db.query(`select 1 from ${mailbox}.projection_checkpoint where projection = 'mailbox-read-model@rebuild'`)).rows.length === 1,
        { timeoutMs: 30_000, what: "the rebuild started" },
      );
      const smtp = nodemailer.createTransport({ host: "127.0.0.1", port: s.smtp!.port, secure: false, ignoreTLS: true });
      await smtp.sendMail({ envelope: { from: "", to: [returnPath] }, raw: dsn(returnPath, "gone@example.org") });
      // The mailbox reads the report meanwhile (a few tries, seconds apart), its message not replayed.
      await delay(3_000);
    } finally {
      await holder.end();
    }
    const done = await rebuilt!;
    expect(done.code, done.stderr).toBe(0);
    await waitFor(async () => (await status()) === "bounced", { timeoutMs: 30_000, what: "the report recorded" });
  });
});
