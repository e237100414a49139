import { generateKeyPairSync } from "node:crypto";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readDeliveryReport } from "@mam/mailbox/delivery/bounces.ts";
import { authVerdicts } from "@mam/mailbox/mime/authenticate.ts";
import { failureNotice, MAX_QUOTED_HEADER_BYTES } from "@mam/mailbox/mime/failure-notice.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { SmtpTranscript } from "@mam/testing/smtp-transcript.ts";
import { TcpRelay } from "@mam/testing/tcp-relay.ts";
import { TestDnsServer } from "@mam/testing/dns-server.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

const notice = (original: string) =>
  failureNotice({
    mailDomain: "agents.test",
    reportingMta: "mx.agents.test",
    to: "sender@example.com",
    noticeId: "0b7e4f1c-3a55-8d6e-9f00-1234567890ab",
    queueId: "q1",
    arrivedAt: new Date("2026-12-03T10:00:00Z"),
    date: new Date("2026-12-03T10:00:01Z"),
    recipients: [{ address: "gone@agents.test", status: "5.1.1", diagnostic: "the inbox was deleted" }],
    original: Buffer.from(original, "utf8"),
  });

describe("failure notices: what they say", () => {
  it("is a delivery status report naming the failed recipient, quoting the original's header only", async () => {
    const raw = await notice("Subject: Hello\r\nMessage-ID: <m1@example.com>\r\n\r\nsecret body\r\n");
    expect(readDeliveryReport(raw)).toEqual({ recipients: ["gone@agents.test"], reasons: { "gone@agents.test": "X-Mam; the inbox was deleted" } });
    const text = raw.toString("latin1");
    expect(text).toMatch(/^From: Mail Delivery System <MAILER-DAEMON@agents\.test>\r\n/m);
    expect(text).toContain("Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: 7bit\r\n\r\nSubject: Hello\r\nMessage-ID: <m1@example.com>\r\n");
    expect(text).not.toContain("secret body");
    expect(text).toMatch(/^Subject: Undelivered Mail Returned to Sender\r\n/m);
    expect(text).toMatch(/^Auto-Submitted: auto-replied\r\n/m);
  });

  it("quotes the header alone, CRLF-ended and 7-bit whatever the original's, and at most the bound of a long one", async () => {
    const raw = await notice("Subject: Grüße\r\n\r\nx\r\n");
    expect([...raw].every((b) => b < 0x80)).toBe(true);
    expect(raw.toString("latin1")).toContain("Content-Transfer-Encoding: quoted-printable\r\n\r\nSubject: Gr=C3=BC=C3=9Fe");
    // Bare LF line ends (smtp-server passes them on): the header still ends at the empty line, quoted with CRLF.
    const lf = (await notice("Subject: Plain\nX-Two: 2\n\nsecret body\n")).toString("latin1");
    expect(lf).toContain("Content-Transfer-Encoding: 7bit\r\n\r\nSubject: Plain\r\nX-Two: 2\r\n\r\n--=_notice_");
    expect(lf).not.toContain("secret body");
    expect(lf).not.toMatch(/[^\r]\n|\r[^\n]/);
    const long = await notice(`${Array.from({ length: 2_000 }, (_, i) => `X-Filler-${i}: ${"y".repeat(60)}`).join("\r\n")}\r\n\r\nbody\r\n`);
    expect(long.length).toBeLessThan(MAX_QUOTED_HEADER_BYTES + 4_096);
    expect(long.toString("latin1")).toMatch(/X-Filler-\d+: y{60}\r\n\r\n--=_notice_/);
  });
});

describe("failure notices: their signature", () => {
  const sink = new SmtpSink();
  afterAll(() => sink.stop());

  it("verifies as received over SMTP, whatever ends the original's header lines (a bare CR included)", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const record = `v=DKIM1; k=rsa; p=${publicKey.export({ type: "spki", format: "der" }).toString("base64")}`;
    const lookup = async (name: string, type: string) => {
      if (type === "TXT" && name === "mam1._domainkey.agents.test") return [[record]];
      throw Object.assign(new Error(`no ${type} for ${name}`), { code: "ENOTFOUND" });
    };
    await sink.start();
    const client = nodemailer.createTransport({ host: "127.0.0.1", port: sink.port, secure: false, ignoreTLS: true });
    const originals = [
      "Subject: Plain\r\nX-Two: 2\r\n\r\nbody\r\n",
      "Subject: Bare CR\rX-Two: 2\r\n\r\nbody\r\n",
      "Subject: Gr\u00fc\u00dfe\nX-Two: 2\n\nbody\n",
    ];
    for (const original of originals) {
      const signed = await failureNotice({
        mailDomain: "agents.test",
        reportingMta: "mx.agents.test",
        to: "sender@example.com",
        noticeId: "0b7e4f1c-3a55-8d6e-9f00-1234567890ab",
        queueId: "q1",
        arrivedAt: new Date(),
        date: new Date(),
        recipients: [{ address: "gone@agents.test", status: "5.1.1", diagnostic: "the inbox was deleted" }],
        original: Buffer.from(original, "utf8"),
        dkim: { domainName: "agents.test", keySelector: "mam1", privateKey },
      });
      await client.sendMail({ envelope: { from: "", to: ["sender@example.com"] }, raw: signed });
      const received = sink.received.at(-1)!.raw;
      const verdicts = await authVerdicts(received, { ip: "127.0.0.1", helo: "mx.agents.test", sender: null, mta: "mx.example.com", lookup });
      expect(verdicts.dkim, JSON.stringify(original)).toBe("pass");
    }
    client.close();
  });
});

/**
 * Mail accepted over SMTP for an inbox deleted a moment before: smtp-ingress's NATS link goes
 * through a relay that holds the deletion back, so its directory still lists the address.
 */
describe("failure notices: mail accepted for an inbox that was gone", () => {
  let natsUrl = "";
  const sink = new SmtpSink();
  // The senders' domains, as the mailbox's SPF checks see them: forged.example allows no one.
  const dns = new TestDnsServer();
  const mailboxEnv: Record<string, string> = { DELIVERY_RETRY_POLL_MS: "100", DELIVERY_RETRY_DELAYS_S: "1" };
  const s = new Stack({
    logLevel: "info",
    smtp: true,
    mailboxEnv,
    natsEnv: (service): Record<string, string> => (service === "smtp-ingress" ? { NATS_URL: natsUrl } : {}),
  });
  const relay = new TcpRelay(new URL(s.iso.urls.NATS_URL));

  beforeAll(async () => {
    mailboxEnv.SMTP_RELAY_URL = await sink.start();
    dns.set("forged.example", { TXT: ["v=spf1 -all"] });
    mailboxEnv.DNS_SERVERS = await dns.start();
    natsUrl = await relay.listen();
    await s.start();
  });
  afterAll(async () => {
    relay.release();
    await s.stop();
    await relay.close();
    await sink.stop();
    await dns.stop();
  });

  async function transaction(from: string, to: string[], subject: string) {
    const t = await SmtpTranscript.open(s.smtp!.port);
    await t.reply();
    await t.command("EHLO client.example.com");
    expect(await t.command(`MAIL FROM:<${from}>`)).toMatch(/^250/);
    for (const r of to) expect(await t.command(`RCPT TO:<${r}>`)).toMatch(/^250/);
    expect(await t.command("DATA")).toMatch(/^354/);
    // Answered once smtp-ingress's link passes the server's acknowledgement on.
    const stored = t.command(`From: <${from}>\r\nTo: ${to.join(", ")}\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@example.com>\r\n\r\nHello.\r\n.`);
    return { stored, close: () => t.close() };
  }

  it("tells the sender which recipients failed (tried again when deferred), files the rest, and tells the null sender or a forged one nothing", async () => {
    const t = await provisionTenant(s, "Notices");
    const create = async (username: string) => (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username } })).body;
    const gone = await create("gone-soon");
    const kept = await create("kept");
    // Both are in smtp-ingress's directory.
    for (const inbox of [gone, kept]) {
      await waitFor(
        async () => {
          const probe = await SmtpTranscript.open(s.smtp!.port);
          await probe.reply();
          await probe.command("EHLO x");
          await probe.command("MAIL FROM:<a@example.com>");
          const ok = /^250/.test(await probe.command(`RCPT TO:<${inbox.email}>`));
          probe.close();
          return ok;
        },
        { timeoutMs: 10_000, what: "the address in the directory" },
      );
    }
    // The sender's server defers the first notice.
    sink.greylist.add("sender@example.com");
    relay.hold();
    expect((await s.api("DELETE", `/v1/inboxes/${gone.id}`, { key: t.key.key })).status).toBe(200);
    const fromSender = await transaction("sender@example.com", [gone.email, kept.email], "to-both");
    const fromNobody = await transaction("", [gone.email], "a-bounce");
    const fromForger = await transaction("someone@forged.example", [gone.email], "forged");
    await new Promise((r) => setTimeout(r, 300));
    relay.release();
    expect(await fromSender.stored).toMatch(/^250/);
    expect(await fromNobody.stored).toMatch(/^250/);
    expect(await fromForger.stored).toMatch(/^250/);
    fromSender.close();
    fromNobody.close();
    fromForger.close();

    await waitFor(() => sink.received.some((m) => m.to.includes("sender@example.com")), { timeoutMs: 20_000, what: "the failure notice" });
    const notices = sink.received.filter((m) => m.to.includes("sender@example.com"));
    expect(notices).toHaveLength(1);
    expect(sink.rcptTries.get("sender@example.com")).toBe(2);
    const n = notices[0]!;
    expect(n.from).toBe("");
    expect(readDeliveryReport(n.raw)?.recipients).toEqual([gone.email]);
    expect(n.raw.toString("latin1")).toMatch(/^DKIM-Signature: .*d=agents\.test;/m);
    expect(n.raw.toString("latin1")).toContain("Message-ID: <to-both@example.com>");

    // The live recipient got its copy.
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${kept.id}/messages`, { key: t.key.key })).body.messages?.length === 1, {
      timeoutMs: 10_000,
      what: "the message filed for the kept inbox",
    });
    // Mail from the null reverse path, or from a sender SPF says is forged, is told nothing: nothing else left.
    await waitFor(() => s.logs.lines.some((l) => l.includes("no failure notice: the mail came from the null reverse path")), {
      timeoutMs: 10_000,
      what: "the null sender's mail seen",
    });
    await waitFor(() => s.logs.lines.some((l) => l.includes("no failure notice: SPF fails")), { timeoutMs: 10_000, what: "the forger's mail seen" });
    expect(sink.received.filter((m) => m.from === "")).toHaveLength(1);
  });
});
