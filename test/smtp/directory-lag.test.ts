import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ClaimsLookup } from "@mam/smtp-ingress/smtp/claims-lookup.ts";
import { SmtpTranscript } from "@mam/testing/smtp-transcript.ts";
import { TcpRelay } from "@mam/testing/tcp-relay.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/**
 * smtp-ingress hears of new inboxes through the mailbox's events; here its NATS connection goes
 * through a relay that can hold them back, as a busy or distant server would.
 */
describe("SMTP ingress, its directory running late", () => {
  let relayUrl = "";
  const s = new Stack({
    logLevel: "warn",
    smtp: true,
    natsEnv: (service): Record<string, string> => (service === "smtp-ingress" ? { NATS_URL: relayUrl } : {}),
  });
  const relay = new TcpRelay(new URL(s.iso.urls.NATS_URL));

  beforeAll(async () => {
    relayUrl = await relay.listen();
    await s.start();
  });
  afterAll(async () => {
    relay.release();
    await s.stop();
    await relay.close();
  });

  afterEach(() => vi.restoreAllMocks());

  it("without the mailbox's lookups, answers RCPT for an inbox whose event has not reached it yet once it has, not 550", async () => {
    // The mailbox cannot say (down, rebuilding): the stream decides. (The class is spied on:
    // the suite's files share loaded modules.)
    vi.spyOn(ClaimsLookup.prototype, "of").mockRejectedValue(new Error("the mailbox does not answer"));
    const t = await provisionTenant(s, "Late");
    const session = await SmtpTranscript.open(s.smtp!.port);
    await session.reply();
    await session.command("EHLO x");
    expect(await session.command("MAIL FROM:<sender@example.com>")).toMatch(/^250/);
    relay.hold();
    const fresh = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "held-back" } })).body;
    const answer = session.command(`RCPT TO:<${fresh.email}>`);
    // A second of the event (and every answer of the server) held back from smtp-ingress.
    await new Promise((r) => setTimeout(r, 1_000));
    relay.release();
    expect(await answer).toMatch(/^250/);
    // An address no inbox has is still refused, once the directory is known to hold everything.
    expect(await session.command(`RCPT TO:<nobody@${s.mailDomain}>`)).toMatch(/^550 5\.1\.1/);
    session.close();
  });

  it("answers RCPT for an inbox whose event the stream does not hold yet (committed, not published), and 550 for an unknown one", async () => {
    const t = await provisionTenant(s, "Unpublished");
    // The mailbox's relay publishes a tenant's events only while it holds the tenant's relay
    // lock (see relay.ts): held here, the creation is committed and answered (the API waits
    // for its event 2 s at most, less when the relay cannot publish) and its event stays in the outbox.
    const db = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await db.connect();
    try {
      await db.query("select pg_advisory_lock(hashtextextended($1, 0))", [`outbox:mailbox:${t.tenant.id}`]);
      const fresh = await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "not-published" } });
      expect(fresh.status).toBe(201);
      const session = await SmtpTranscript.open(s.smtp!.port);
      await session.reply();
      await session.command("EHLO x");
      expect(await session.command("MAIL FROM:<sender@example.com>")).toMatch(/^250/);
      expect(await session.command(`RCPT TO:<${fresh.body.email}>`)).toMatch(/^250/);
      expect(await session.command(`RCPT TO:<nobody-else@${s.mailDomain}>`)).toMatch(/^550 5\.1\.1/);
      session.close();
    } finally {
      await db.query("select pg_advisory_unlock_all()");
      await db.end();
    }
  });
});
