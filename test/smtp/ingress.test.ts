import nodemailer from "nodemailer";
import MailComposer from "nodemailer/lib/mail-composer/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { generateKeyPairSync } from "node:crypto";
import { TestDnsServer } from "@mam/testing/dns-server.ts";
import { SmtpTranscript } from "@mam/testing/smtp-transcript.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

const MAX = 4_000_000;

describe("SMTP ingress", () => {
  const dns = new TestDnsServer();
  let s: Stack;
  let a: { id: string; apiKey: string; email: string };
  let b: { id: string; apiKey: string; email: string };
  let port: number;

  const inbound = async (inbox: { id: string; apiKey: string }) =>
    (await s.api("GET", `/v1/inboxes/${inbox.id}/messages?direction=inbound&limit=100`, { key: inbox.apiKey })).body.messages as {
      id: string;
      subject: string;
      plainBody: string | null;
      threadId: string;
      attachments: { id: string; filename: string; sizeBytes: number }[];
    }[];
  const waitInbound = (inbox: { id: string; apiKey: string }, n: number) =>
    waitFor(async () => (await inbound(inbox)).length >= n, { timeoutMs: 10_000, what: `${n} inbound` });
  const client = (opts: object = {}) => nodemailer.createTransport({ host: "127.0.0.1", port, secure: false, ignoreTLS: true, ...opts });

  beforeAll(async () => {
    const resolver = await dns.start();
    s = new Stack({
      logLevel: "warn",
      smtp: true,
      smtpEnv: {
        SMTP_MAX_MESSAGE_BYTES: String(MAX),
        SMTP_MAX_RECIPIENTS: "5",
        SMTP_MAX_CLIENTS_PER_IP: "6",
        INGEST_INLINE_BYTES: "50000",
        SMTP_DATA_TIMEOUT_MS: "2000",
        SMTP_IDLE_TIMEOUT_MS: "3000",
        DIRECTORY_SNAPSHOT_WAIT_MS: "1000",
      },
      mailboxEnv: { DNS_SERVERS: resolver },
    });
    await s.start();
    port = s.smtp!.port;
    const t1 = await provisionTenant(s, "One");
    const t2 = await provisionTenant(s, "Two");
    a = (await s.api("POST", "/v1/inboxes", { key: t1.key.key, body: { username: "inbound-a" } })).body;
    b = (await s.api("POST", "/v1/inboxes", { key: t2.key.key, body: { username: "inbound-b" } })).body;
    // The directory hears about new inboxes through events.
    await waitFor(
      async () => {
        const t = await SmtpTranscript.open(port);
        await t.reply();
        await t.command("EHLO probe");
        await t.command("MAIL FROM:<p@example.com>");
        const r = await t.command(`RCPT TO:<${b.email}>`);
        t.close();
        return r.startsWith("250");
      },
      { timeoutMs: 5_000, what: "directory" },
    );
  });
  afterAll(async () => {
    await s.stop();
    await dns.stop();
  });

  it("announces SIZE, PIPELINING, 8BITMIME, SMTPUTF8 and STARTTLS", async () => {
    const t = await SmtpTranscript.open(port);
    expect((await t.reply())[0]).toMatch(/^220 /);
    t.write("EHLO client.example\r\n");
    const ehlo = (await t.reply()).map((l) => l.slice(4));
    for (const ext of [`SIZE ${MAX}`, "PIPELINING", "8BITMIME", "SMTPUTF8", "STARTTLS"]) expect(ehlo).toContain(ext);
    t.close();
  });

  it("refuses unknown addresses and foreign domains with 550 5.1.1: never a relay", async () => {
    const t = await SmtpTranscript.open(port);
    await t.reply();
    await t.command("EHLO x");
    expect(await t.command("MAIL FROM:<sender@example.com>")).toMatch(/^250/);
    expect(await t.command(`RCPT TO:<nobody@${s.mailDomain}>`)).toMatch(/^550 5\.1\.1/);
    expect(await t.command("RCPT TO:<someone@gmail.com>")).toMatch(/^550 5\.1\.1/);
    expect(await t.command(`RCPT TO:<${a.email}>`)).toMatch(/^250/);
    t.close();
  });

  it("delivers through a real client, in plain text and over STARTTLS, with attachments", async () => {
    const pdf = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 31) % 256));
    await client().sendMail({
      from: "Partner <partner@example.com>",
      to: a.email,
      subject: "Plain",
      text: "hello a",
      attachments: [{ filename: "x.pdf", content: pdf }],
    });
    await client({ ignoreTLS: false, requireTLS: true, tls: { rejectUnauthorized: false } }).sendMail({
      from: "partner@example.com",
      to: a.email,
      subject: "Secure",
      text: "over tls",
    });
    await waitInbound(a, 2);
    const got = await inbound(a);
    const plain = got.find((m) => m.subject === "Plain")!;
    expect(plain.plainBody?.trim()).toBe("hello a");
    const att = await fetch(`http://127.0.0.1:${s.gateways[0]!.port}/v1/inboxes/${a.id}/messages/${plain.id}/attachments/${plain.attachments[0]!.id}`, {
      headers: { "x-api-key": a.apiKey },
    });
    expect(Buffer.from(await att.arrayBuffer()).equals(pdf)).toBe(true);
    expect(got.find((m) => m.subject === "Secure")!.plainBody?.trim()).toBe("over tls");
  });

  it("one message to two inboxes in two tenants: one copy each, each seen only by its own key", async () => {
    await client().sendMail({ from: "boss@example.com", to: [a.email, b.email], subject: "To both", text: "both" });
    await waitFor(async () => (await inbound(a)).some((m) => m.subject === "To both") && (await inbound(b)).some((m) => m.subject === "To both"), {
      timeoutMs: 10_000,
    });
    const copyB = (await inbound(b)).find((m) => m.subject === "To both")!;
    expect((await s.api("GET", `/v1/inboxes/${b.id}/messages/${copyB.id}`, { key: a.apiKey })).status).toBe(404);
  });

  it("a resend of the same message (lost 250) does not make a second copy", async () => {
    // The same bytes both times: nodemailer stamps Date per send, so it is fixed here (two sends a
    // second apart under load made two different messages, rightly filed twice).
    const msg = {
      from: "retry@example.com",
      to: b.email,
      subject: "Resent",
      text: "once",
      messageId: "<resend-1@example.com>",
      date: new Date("2026-11-30T12:00:00Z"),
    };
    await client().sendMail(msg);
    await client().sendMail(msg);
    await waitFor(async () => (await inbound(b)).some((m) => m.subject === "Resent"), { timeoutMs: 10_000 });
    await client().sendMail({ ...msg, subject: "Marker", messageId: "<marker@example.com>" });
    await waitFor(async () => (await inbound(b)).some((m) => m.subject === "Marker"), { timeoutMs: 10_000 });
    expect((await inbound(b)).filter((m) => m.subject === "Resent")).toHaveLength(1);
  });

  it("pipelined commands and input split into 1-17 byte pieces", async () => {
    const t = await SmtpTranscript.open(port);
    await t.reply();
    await t.command("EHLO pipeliner");
    const body = `From: slow@example.com\r\nTo: ${a.email}\r\nSubject: Chunked\r\nMessage-ID: <chunked@example.com>\r\n\r\n${"line of text\r\n".repeat(50)}.\r\n`;
    await t.writeChunked(`MAIL FROM:<slow@example.com>\r\nRCPT TO:<${a.email}>\r\nDATA\r\n`);
    expect((await t.reply())[0]).toMatch(/^250/);
    expect((await t.reply())[0]).toMatch(/^250/);
    expect((await t.reply())[0]).toMatch(/^354/);
    await t.writeChunked(body);
    expect((await t.reply())[0]).toMatch(/^250 2\.0\.0 Ok: queued as /);
    expect(await t.command("QUIT")).toMatch(/^221/);
    await waitFor(async () => (await inbound(a)).some((m) => m.subject === "Chunked"), { timeoutMs: 10_000 });
  });

  it("too many recipients: 452 4.5.3; too big: 552 5.3.4 after draining the rest", async () => {
    const t = await SmtpTranscript.open(port);
    await t.reply();
    await t.command("EHLO big");
    await t.command("MAIL FROM:<big@example.com>");
    for (let i = 0; i < 5; i++) expect(await t.command(`RCPT TO:<${a.email}>`)).toMatch(/^250/);
    expect(await t.command(`RCPT TO:<${a.email}>`)).toMatch(/^452 4\.5\.3/);
    expect(await t.command("DATA")).toMatch(/^354/);
    t.write(`Subject: huge\r\n\r\n${"x".repeat(998)}\r\n`.repeat(Math.ceil((MAX * 2) / 1000)));
    t.write(".\r\n");
    expect((await t.reply())[0]).toMatch(/^552 5\.3\.4/);
    // The session is still usable.
    expect(await t.command("RSET")).toMatch(/^250/);
    t.close();
  });

  it("a reply to mail the inbox sent joins its thread", async () => {
    const sent = await s.api("POST", `/v1/inboxes/${a.id}/send`, {
      key: a.apiKey,
      body: { to: "partner@example.com", subject: "Quote", plainBody: "q", verified: true },
    });
    await client().sendMail({
      from: "partner@example.com",
      to: a.email,
      subject: "Re: Quote",
      text: "answer",
      inReplyTo: sent.body.messageId,
      references: [sent.body.messageId],
    });
    await waitFor(async () => (await inbound(a)).some((m) => m.subject === "Re: Quote"), { timeoutMs: 10_000 });
    expect((await inbound(a)).find((m) => m.subject === "Re: Quote")!.threadId).toBe(sent.body.threadId);
  });

  it("a corpus of malformed messages: each accepted, kept, visible; the server keeps answering", async () => {
    const corpus = [
      "no headers at all, just text\r\n",
      "Subject: broken base64\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not*base64***\r\n",
      `Subject: many parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n${"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n".repeat(1500)}--b--\r\n`,
      `Subject: giant header\r\nX-Big: ${"y".repeat(60_000)}\r\n\r\nbody\r\n`,
      "Subject: =?bogus?Q?charset?=\r\nContent-Type: text/plain; charset=does-not-exist\r\n\r\n\xff\xfe broken bytes\r\n",
      "Subject: unterminated multipart\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/html\r\n\r\n<p>never closed\r\n",
      // NUL, which PostgreSQL text cannot hold, in the subject, a name and the body.
      'Subject: nul\u0000inside\r\nFrom: "Nul\u0000Name" <nul@example.com>\r\n\r\nbody with \u0000 a NUL\r\n',
      "Subject: encoded nul =?utf-8?B?AGhpZGRlbgA=?=\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nAGJhc2U2NCBOVUwA\r\n",
      // An attachment name of 130 emoji: cut to 255 UTF-16 units it would end in half a pair, which jsonb refuses.
      `Subject: emoji name\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=e\r\n\r\n--e\r\nContent-Type: text/plain\r\n\r\nsee file\r\n--e\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=UTF-8''${encodeURIComponent("😀".repeat(130))}\r\n\r\nxyz\r\n--e--\r\n`,
      // More addresses in To and Cc than one event (one NATS message) could carry.
      `Subject: crowded\r\nTo: ${Array.from({ length: 41_000 }, (_, i) => `u${i}@r.io`).join(",")}\r\nCc: ${Array.from({ length: 41_000 }, (_, i) => `c${i}@r.io`).join(",")}\r\n\r\nhi all\r\n`,
    ];
    const before = (await inbound(b)).length;
    for (const [i, raw] of corpus.entries()) {
      const t = await SmtpTranscript.open(port);
      await t.reply();
      await t.command("EHLO fuzz");
      await t.command("MAIL FROM:<fuzz@example.com>");
      await t.command(`RCPT TO:<${b.email}>`);
      await t.command("DATA");
      t.write(Buffer.from(`Message-ID: <fuzz-${i}@example.com>\r\n${raw.replace(/^\./gm, "..")}\r\n.\r\n`, "latin1"));
      expect((await t.reply())[0], `message ${i}`).toMatch(/^250/);
      t.close();
    }
    await waitFor(async () => (await inbound(b)).length >= before + corpus.length, { timeoutMs: 20_000, what: "the corpus in the inbox" });
    const t = await SmtpTranscript.open(port);
    expect((await t.reply())[0]).toMatch(/^220/);
    t.close();
  });

  it("records SPF, DKIM and DMARC verdicts looked up through DNS_SERVERS", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    dns.set("sel._domainkey.signed.example", { TXT: [`v=DKIM1; k=rsa; p=${publicKey.export({ type: "spki", format: "der" }).toString("base64")}`] });
    dns.set("signed.example", { TXT: ["v=spf1 ip4:127.0.0.1 -all"] });
    dns.set("_dmarc.signed.example", { TXT: ["v=DMARC1; p=reject"] });
    dns.set("forged.example", { TXT: ["v=spf1 ip4:192.0.2.1 -all"] });
    await client({
      dkim: { domainName: "signed.example", keySelector: "sel", privateKey: privateKey.export({ type: "pkcs8", format: "pem" }).toString() },
    }).sendMail({ from: "ceo@signed.example", to: b.email, subject: "Signed", text: "trust me" });
    await client().sendMail({ from: "ceo@forged.example", to: b.email, subject: "Forged", text: "trust me too" });
    const find = async (subject: string) => {
      const m = (await inbound(b)).find((x) => x.subject === subject);
      return m ? (await s.api("GET", `/v1/inboxes/${b.id}/messages/${m.id}`, { key: b.apiKey })).body.authentication : undefined;
    };
    await waitFor(async () => !!(await find("Signed")) && !!(await find("Forged")), { timeoutMs: 15_000, what: "both messages" });
    expect(await find("Signed")).toEqual({ spf: "pass", dkim: "pass", dmarc: "pass" });
    expect(await find("Forged")).toMatchObject({ spf: "fail", dkim: "none" });
  });

  it("a delivery status notification sent to an inbox is ordinary mail: filed, and it bounces nothing", async () => {
    // far.example's DNS fails: delivery keeps retrying, so only the DSN could bounce it. Only a
    // report to the message's return path may (test/mailbox/bounces.test.ts); anyone can write to an inbox.
    dns.failing.add("far.example");
    const sent = await s.api("POST", `/v1/inboxes/${a.id}/send`, {
      key: a.apiKey,
      body: { to: "gone@far.example", subject: "Will bounce", plainBody: "x", verified: true },
    });
    const status = async () => (await s.api("GET", `/v1/inboxes/${a.id}/messages/${sent.body.id}`, { key: a.apiKey })).body.status;
    await waitFor(async () => (await status()) === "deferred", { timeoutMs: 10_000, what: "deferred" });
    const dsn = [
      `From: MAILER-DAEMON@far.example`,
      `To: ${a.email}`,
      `Subject: Undelivered Mail Returned to Sender`,
      `Message-ID: <dsn-1@far.example>`,
      `MIME-Version: 1.0`,
      `Content-Type: multipart/report; report-type=delivery-status; boundary="R"`,
      ``,
      `--R`,
      `Content-Type: text/plain`,
      ``,
      `Your message could not be delivered.`,
      `--R`,
      `Content-Type: message/delivery-status`,
      ``,
      `Reporting-MTA: dns; mx.far.example`,
      ``,
      `Final-Recipient: rfc822; gone@far.example`,
      `Action: failed`,
      `Status: 5.1.1`,
      `Diagnostic-Code: smtp; 550 5.1.1 user unknown`,
      `--R`,
      `Content-Type: text/rfc822-headers`,
      ``,
      `Message-ID: ${sent.body.messageId}`,
      `Subject: Will bounce`,
      `--R--`,
      ``,
    ].join("\r\n");
    await client().sendMail({ envelope: { from: "", to: [a.email] }, raw: dsn });
    await waitFor(async () => (await inbound(a)).some((m) => m.subject === "Undelivered Mail Returned to Sender"), { timeoutMs: 5_000 });
    expect(await status()).toBe("deferred");
  });

  it("a deleted inbox's address is refused with 550 5.1.1", async () => {
    const t = await provisionTenant(s, "Leaving");
    const gone = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "leaving" } })).body;
    const rcpt = async () => {
      const c = await SmtpTranscript.open(port);
      await c.reply();
      await c.command("EHLO x");
      await c.command("MAIL FROM:<x@example.com>");
      const r = await c.command(`RCPT TO:<${gone.email}>`);
      c.close();
      return r;
    };
    await waitFor(async () => (await rcpt()).startsWith("250"), { timeoutMs: 5_000, what: "address known" });
    await s.api("DELETE", `/v1/inboxes/${gone.id}`, { key: t.key.key });
    await waitFor(async () => /^550 5\.1\.1/.test(await rcpt()), { timeoutMs: 5_000, what: "address refused" });
  });

  it("connections per address are capped: 421 4.7.0 beyond the limit", async () => {
    const open: SmtpTranscript[] = [];
    for (let i = 0; i < 6; i++) {
      const c = await SmtpTranscript.open(port);
      expect((await c.reply())[0]).toMatch(/^220/);
      open.push(c);
    }
    const extra = await SmtpTranscript.open(port);
    expect((await extra.reply())[0]).toMatch(/^421 4\.7\.0/);
    extra.close();
    for (const c of open) c.close();
  });

  it("a message of megabytes travels through the object store and downloads intact, raw and attachment", async () => {
    // Several times what one NATS message holds, both ways: in through the object store,
    // out through the API in slices.
    const big = Buffer.from(Array.from({ length: 2_500_000 }, (_, i) => (i * 7) % 251));
    const sent = await new MailComposer({
      from: "big@example.com",
      to: b.email,
      subject: "Large",
      messageId: "<large-1@example.com>",
      text: "see attachment",
      attachments: [{ filename: "big.bin", content: big }],
    })
      .compile()
      .build();
    await client().sendMail({ envelope: { from: "big@example.com", to: [b.email] }, raw: sent });
    await waitFor(async () => (await inbound(b)).some((m) => m.subject === "Large"), { timeoutMs: 15_000, what: "the large message" });
    const m = (await inbound(b)).find((x) => x.subject === "Large")!;
    const get = (path: string) =>
      fetch(`http://127.0.0.1:${s.gateways[0]!.port}/v1/inboxes/${b.id}/messages/${m.id}${path}`, { headers: { "x-api-key": b.apiKey } });

    const att = await get(`/attachments/${m.attachments[0]!.id}`);
    expect(att.status).toBe(200);
    expect(att.headers.get("content-length")).toBe(String(big.length));
    expect(Buffer.from(await att.arrayBuffer()).equals(big)).toBe(true);

    // The raw is what the client sent, after the Received line this server added.
    const raw = Buffer.from(await (await get("/raw")).arrayBuffer());
    expect(raw.toString("latin1", 0, 9)).toBe("Received:");
    expect(raw.length).toBeGreaterThan(sent.length);
    expect(raw.subarray(raw.length - sent.length).equals(sent)).toBe(true);
  });
  it("message data that trickles in past the data timeout: 421 4.4.2, closed, nothing filed", async () => {
    const t = await SmtpTranscript.open(port);
    await t.reply();
    await t.command("EHLO slow");
    await t.command("MAIL FROM:<slow@example.com>");
    expect(await t.command(`RCPT TO:<${a.email}>`)).toMatch(/^250/);
    expect(await t.command("DATA")).toMatch(/^354/);
    t.write("Subject: trickled\r\n\r\n");
    // A line every 200 ms: never idle, never done.
    const trickle = setInterval(() => !t.closed && t.write("x\r\n"), 200);
    try {
      expect((await t.reply(10_000))[0]).toMatch(/^421 4\.4\.2/);
      await waitFor(() => t.closed, { timeoutMs: 5_000, what: "the connection closed" });
    } finally {
      clearInterval(trickle);
    }
    expect((await inbound(a)).some((m) => m.subject === "trickled")).toBe(false);
  });
  it("a client that goes quiet is told 421 after the idle timeout and disconnected", async () => {
    const t = await SmtpTranscript.open(port);
    await t.reply();
    expect(await t.command("EHLO quiet")).toMatch(/^250/);
    expect((await t.reply(10_000))[0]).toMatch(/^421/);
    await waitFor(() => t.closed, { timeoutMs: 5_000, what: "the connection closed" });
  });
  it("a restarted smtp-ingress loads its directory from the mailbox's snapshot, or replays the events without a mailbox", async () => {
    const t = await provisionTenant(s, "Restart");
    const kept = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "kept" } })).body;
    const alias = `kept-alias@${s.mailDomain}`;
    expect((await s.api("POST", `/v1/inboxes/${kept.id}/addresses`, { key: t.key.key, body: { email: alias, primary: false } })).status).toBe(201);
    const gone = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "gone" } })).body;
    expect((await s.api("DELETE", `/v1/inboxes/${gone.id}`, { key: t.key.key })).status).toBe(200);
    const rcpt = async (address: string) => {
      const c = await SmtpTranscript.open(port);
      await c.reply();
      await c.command("EHLO restart");
      await c.command("MAIL FROM:<r@example.com>");
      const r = await c.command(`RCPT TO:<${address}>`);
      c.close();
      return r.slice(0, 3);
    };
    const expectDirectory = async () => {
      expect(await rcpt(kept.email)).toBe("250");
      expect(await rcpt(alias)).toBe("250");
      expect(await rcpt(gone.email)).toBe("550");
      expect(await rcpt(a.email)).toBe("250");
      // From the directory itself: a miss is looked up in the mailbox, which would answer the same.
      const directory = s.smtp!.ctx.directory!;
      for (const address of [kept.email, alias, a.email]) expect(directory.lookup(address), address).toBeDefined();
      expect(directory.lookup(gone.email)).toBeUndefined();
    };
    const replays = () => s.logs.text().split("replaying every mailbox event").length - 1;
    await waitFor(async () => (await rcpt(alias)) === "250" && (await rcpt(gone.email)) === "550", { timeoutMs: 5_000, what: "the directory up to date" });

    // Without a mailbox to ask: the whole stream, same answers.
    const before = replays();
    await s.mailbox!.destroy();
    await s.smtp!.destroy();
    await s.startSmtp();
    port = s.smtp!.port;
    expect(replays()).toBe(before + 1);
    await expectDirectory();
    await s.startMailbox();

    // With one: from its snapshot and the events after it. The events the snapshot covers
    // are purged first, so the answers can only come from the snapshot.
    await s.iso.jetstream(async (jsm) => {
      const stream = eventsStreamName(s.iso.prefix);
      const floor = (await jsm.consumers.info(stream, "mailbox-read-model")).ack_floor.stream_seq;
      await jsm.streams.purge(stream, { seq: floor + 1 });
    });
    await s.smtp!.destroy();
    await s.startSmtp();
    port = s.smtp!.port;
    expect(replays()).toBe(before + 1);
    await expectDirectory();
    // Events after the snapshot still arrive.
    const later = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "later" } })).body;
    await waitFor(async () => (await rcpt(later.email)) === "250", { timeoutMs: 5_000, what: "an inbox created after the restart" });
  });
});
