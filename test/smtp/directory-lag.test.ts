import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

  it("answers RCPT for an inbox whose event has not reached it yet once it has, not 550", async () => {
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
});
