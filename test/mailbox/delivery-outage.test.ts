import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { waitFor } from "@mam/runtime/wait.ts";
import { PrivateNatsServer } from "@mam/testing/nats-server.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/**
 * A server says 250 while NATS is down: the outcome is recorded at once all the same (its
 * event waits in the outbox), the retry queue lets the recipient go, the event is published
 * once NATS is back, and the recipient is never sent the message a second time.
 */
describe("a delivery outcome while NATS is down", () => {
  const nats = new PrivateNatsServer();
  const relay = new SmtpSink();
  let s: Stack;

  beforeAll(async () => {
    await nats.start();
    const relayUrl = await relay.start();
    s = new Stack({
      logLevel: "silent",
      natsUrl: nats.url,
      mailboxEnv: { SMTP_RELAY_URL: relayUrl, DELIVERY_RETRY_DELAYS_S: "2", DELIVERY_RETRY_POLL_MS: "200" },
    });
    await s.start();
  }, 60_000);
  afterAll(async () => {
    await s.stop();
    await relay.stop();
    await nats.stop();
  });

  it("is recorded at once, published when NATS is back, and the recipient gets one copy", async () => {
    const t = await provisionTenant(s);
    const inbox = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "outage" } })).body;
    relay.greylist.add("late@example.org");
    const sent = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, {
      key: inbox.apiKey,
      body: { to: "late@example.org", subject: "unrecorded", plainBody: "x", verified: true },
    });
    expect(sent.status).toBe(200);
    // Greylisted at first: the message waits in the queue for its retry in 2 s.
    await waitFor(() => relay.rcptTries.get("late@example.org") === 1, { timeoutMs: 10_000, what: "the first try" });
    await nats.kill();
    // The retry reaches the relay (which says 250) while nothing can be appended.
    await waitFor(() => relay.received.some((m) => m.to.includes("late@example.org")), { timeoutMs: 15_000, what: "the retry accepted" });
    const db = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await db.connect();
    const mailbox = s.iso.schema("mailbox");
    const count = async (query: string) => (await db.query(query)).rows[0].n as number;
    try {
      await waitFor(async () => (await count(`select count(*)::int as n from ${mailbox}.delivery_queue`)) === 0, {
        timeoutMs: 30_000,
        what: "the queue let go",
      });
      const waiting = await db.query(
        `select seq from ${mailbox}.outbox where published_at is null and envelope like '%"MessageDelivered"%' and envelope like '%late@example.org%'`,
      );
      expect(waiting.rows).toHaveLength(1);
      const delivered = `select count(*)::int as n from ${mailbox}.outbox where seq = ${Number(waiting.rows[0].seq)}`;
      expect((await db.query(`select status from ${mailbox}.messages where message_id = $1`, [sent.body.id])).rows[0].status).toBe("delivered");
      await nats.start();
      await waitFor(async () => (await count(`${delivered} and published_at is not null`)) === 1, { timeoutMs: 30_000, what: "the outcome published" });
    } finally {
      await db.end();
    }
    // The services reconnect to the restarted server on their own; under load that may take a while.
    let last: unknown;
    await waitFor(
      async () => {
        const r = await s.api("GET", `/v1/inboxes/${inbox.id}/messages/${sent.body.id}`, { key: inbox.apiKey });
        last = { status: r.status, body: r.body?.status ?? r.body };
        return r.body?.status === "delivered";
      },
      { timeoutMs: 30_000, intervalMs: 100, what: "delivered through the API" },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last answer ${JSON.stringify(last)}`);
    });
    expect(relay.received.filter((m) => m.to.includes("late@example.org"))).toHaveLength(1);
  }, 120_000);
});
