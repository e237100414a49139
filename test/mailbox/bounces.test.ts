import { randomUUID } from "node:crypto";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReturnPaths } from "@mam/mailbox/delivery/return-path.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { failureReport } from "../support/dsn.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

const SECRET = "bounce-secret-of-this-test-0123456789abcdef";
/** Polls of the API spaced so that a slow run stays inside the key's rate limit (600 a minute). */
const POLL_MS = 100;

/** A failure report as an MX sends one about recipients it refused, quoting the original's Message-ID. */
const dsn = (to: string, recipients: string[], diagnostic: string, original = `<${randomUUID()}@agents.test>`) =>
  failureReport({ to, recipients, diagnostic, original });

/**
 * Bounces come back to the return path of the message they are about (bounces+<token>), from
 * the null sender, through smtp-ingress. Only such a report marks a message bounced; the same
 * report anywhere else is ordinary mail, and a token we did not make does nothing.
 */
describe("bounces", () => {
  const relay = new SmtpSink();
  let s: Stack;
  let inbox: { id: string; email: string; apiKey: string };
  const paths = new ReturnPaths(Buffer.from(SECRET), "agents.test");
  const smtp = () => nodemailer.createTransport({ host: "127.0.0.1", port: s.smtp!.port, secure: false, ignoreTLS: true });
  const message = async (id: string) => (await s.api("GET", `/v1/inboxes/${inbox.id}/messages/${id}`, { key: inbox.apiKey })).body;

  type Delivery = { recipient: string; status: string; reason: string | null; at: string | null };
  const deliveries = async (id: string) => ((await message(id)).deliveries as Delivery[]).toSorted((a, b) => a.recipient.localeCompare(b.recipient));
  const report = (to: string, recipient: string, diagnostic: string, original?: string) => dsn(to, [recipient], diagnostic, original);

  /**
   * Sends a message through the relay (to bob@partner.example unless told); its id and return
   * path once the relay answered for every recipient.
   */
  async function sendOne(subject: string, to: string | string[] = "bob@partner.example"): Promise<{ id: string; returnPath: string; header: string }> {
    const before = relay.received.length;
    const sent = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, {
      key: inbox.apiKey,
      body: { to, subject, plainBody: "x", verified: true },
    });
    expect(sent.status).toBe(200);
    await waitFor(async () => (await deliveries(sent.body.id)).every((d) => d.status !== "pending"), {
      timeoutMs: 10_000,
      intervalMs: POLL_MS,
      what: "an outcome for each recipient",
    });
    const out = relay.received[before]!;
    // The envelope sender names the message; the From header stays the inbox's.
    expect(out.from).toBe(paths.address(sent.body.id));
    expect(out.from).toMatch(/^bounces\+[a-z2-7]{16,56}@agents\.test$/);
    expect(out.raw.toString()).toContain(`From: ${inbox.email}`);
    return { id: sent.body.id, returnPath: out.from, header: (await message(sent.body.id)).messageIdHeader };
  }

  beforeAll(async () => {
    s = new Stack({ logLevel: "info", smtp: true, mailboxEnv: { SMTP_RELAY_URL: await relay.start(), BOUNCE_SECRET: SECRET } });
    await s.start();
    const t = await provisionTenant(s);
    inbox = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "sender" } })).body;
  });
  afterAll(async () => {
    await s.stop();
    await relay.stop();
  });

  it("a report from the null sender to the message's return path marks it bounced, with the reason", async () => {
    const { id, returnPath } = await sendOne("Will bounce");
    const inbound = async () => (await s.api("GET", `/v1/inboxes/${inbox.id}/messages?direction=inbound`, { key: inbox.apiKey })).body.messages as unknown[];
    // Counted before rather than expected empty: the other tests file mail in this inbox, in whatever order they run.
    const before = (await inbound()).length;
    await smtp().sendMail({ envelope: { from: "", to: [returnPath] }, raw: report(returnPath, "bob@partner.example", "550 5.1.1 no such user bob") });
    await waitFor(async () => (await message(id)).status === "bounced", { timeoutMs: 10_000, what: "bounced" });
    expect((await message(id)).deliveries).toMatchObject([{ recipient: "bob@partner.example", status: "bounced", reason: "smtp; 550 5.1.1 no such user bob" }]);
    // It had no inbox to be filed in.
    expect(await inbound()).toHaveLength(before);
  });

  it("the same report from a sender, or to the inbox's own address, is ordinary mail and bounces nothing", async () => {
    const { id, returnPath, header } = await sendOne("Stays delivered");
    // It names the message by its Message-ID too, which once sufficed to mark it bounced.
    const raw = report(returnPath, "bob@partner.example", "550 5.1.1 forged", header);
    // To the return path from a mailbox: refused at RCPT by smtp-ingress.
    await expect(smtp().sendMail({ envelope: { from: "mallory@evil.example", to: [returnPath] }, raw })).rejects.toMatchObject({ responseCode: 550 });
    // To the inbox, from the null sender and from a mailbox: filed, nothing more (the address
    // directory of smtp-ingress hears of the inbox shortly after it is made).
    await waitFor(
      () =>
        smtp()
          .sendMail({ envelope: { from: "", to: [inbox.email] }, raw: raw.replace("Subject: Undelivered", "Subject: Null-sender Undelivered") })
          .then(
            () => true,
            () => false,
          ),
      { timeoutMs: 10_000, what: "the inbox known to smtp-ingress" },
    );
    await smtp().sendMail({ envelope: { from: "mallory@evil.example", to: [inbox.email] }, raw });
    const inbound = async () =>
      (await s.api("GET", `/v1/inboxes/${inbox.id}/messages?direction=inbound`, { key: inbox.apiKey })).body.messages as { subject: string }[];
    await waitFor(async () => (await inbound()).length === 2, { timeoutMs: 10_000, what: "both reports filed" });
    expect((await inbound()).map((m) => m.subject).sort()).toEqual(["Null-sender Undelivered Mail Returned to Sender", "Undelivered Mail Returned to Sender"]);
    expect((await message(id)).status).toBe("delivered");
  });

  const said = (msg: string, messageId: string) => s.logs.entries().some((e) => e.msg === msg && e.messageId === messageId);
  const bounceBack = (returnPath: string, recipients: string[], diagnostic: string) =>
    smtp().sendMail({ envelope: { from: "", to: [returnPath] }, raw: dsn(returnPath, recipients, diagnostic) });

  it("each recipient's own report bounces it: the second report is not ignored because the first bounced the message", async () => {
    // The relay takes both; each final MX refuses its own recipient and sends its own report.
    const { id, returnPath } = await sendOne("Two reports", ["bob@partner.example", "carol@other.example"]);
    expect((await deliveries(id)).map((d) => d.status)).toEqual(["delivered", "delivered"]);
    await bounceBack(returnPath, ["bob@partner.example"], "550 5.1.1 no bob here");
    await waitFor(async () => (await message(id)).status === "bounced", { timeoutMs: 10_000, intervalMs: POLL_MS, what: "the first bounce" });
    await bounceBack(returnPath, ["carol@other.example"], "550 5.1.1 no carol here");
    await waitFor(async () => (await deliveries(id)).every((d) => d.status === "bounced"), {
      timeoutMs: 10_000,
      intervalMs: POLL_MS,
      what: "the second bounce",
    });
    expect(await deliveries(id)).toMatchObject([
      { recipient: "bob@partner.example", status: "bounced", reason: "smtp; 550 5.1.1 no bob here" },
      { recipient: "carol@other.example", status: "bounced", reason: "smtp; 550 5.1.1 no carol here" },
    ]);
    // A third report about them (another copy, or the same one again) records nothing more.
    await bounceBack(returnPath, ["carol@other.example", "bob@partner.example"], "550 again");
    await waitFor(() => said("report about recipients bounced already: nothing to record", id), {
      timeoutMs: 10_000,
      intervalMs: POLL_MS,
      what: "the third report read",
    });
    expect((await deliveries(id)).map((d) => d.reason)).toEqual(["smtp; 550 5.1.1 no bob here", "smtp; 550 5.1.1 no carol here"]);
  });

  it("one report about two recipients bounces each with the reason its own block gives", async () => {
    const { id, returnPath } = await sendOne("Two reasons", ["bob@partner.example", "carol@other.example"]);
    const raw = failureReport({
      to: returnPath,
      recipients: ["bob@partner.example", "carol@other.example"],
      diagnostic: { "bob@partner.example": "550 5.1.1 no bob", "carol@other.example": "552 5.2.2 carol is full" },
    });
    await smtp().sendMail({ envelope: { from: "", to: [returnPath] }, raw });
    await waitFor(async () => (await deliveries(id)).every((d) => d.status === "bounced"), { timeoutMs: 10_000, intervalMs: POLL_MS, what: "both bounced" });
    expect((await deliveries(id)).map((d) => d.reason)).toEqual(["smtp; 550 5.1.1 no bob", "smtp; 552 5.2.2 carol is full"]);
  });

  it("after the relay refused one recipient at RCPT, a report about another still bounces it", async () => {
    relay.refuse.add("dave@other.example");
    try {
      const { id, returnPath } = await sendOne("Refused then reported", ["bob@partner.example", "dave@other.example"]);
      expect((await message(id)).status).toBe("bounced");
      expect((await deliveries(id)).map((d) => [d.recipient, d.status])).toEqual([
        ["bob@partner.example", "delivered"],
        ["dave@other.example", "bounced"],
      ]);
      await bounceBack(returnPath, ["bob@partner.example"], "550 5.1.1 mailbox full for good");
      await waitFor(async () => (await deliveries(id))[0]!.status === "bounced", { timeoutMs: 10_000, intervalMs: POLL_MS, what: "bob bounced" });
      expect((await deliveries(id))[0]!.reason).toBe("smtp; 550 5.1.1 mailbox full for good");
    } finally {
      relay.refuse.delete("dave@other.example");
    }
  });

  it("a report bounces only the recipients it names that the message was sent to; one naming none of them, nobody", async () => {
    const { id, returnPath } = await sendOne("Named only", ["bob@partner.example", "carol@other.example"]);
    // Any recipient (a Bcc too) sees the return path: naming others marks nobody.
    await bounceBack(returnPath, ["mallory@evil.example"], "550 5.1.1 forged for everyone");
    await waitFor(() => said("report naming no recipient of the message dropped", id), { timeoutMs: 10_000, intervalMs: POLL_MS, what: "the report dropped" });
    expect((await message(id)).status).toBe("delivered");
    expect((await deliveries(id)).map((d) => d.status)).toEqual(["delivered", "delivered"]);
    // Naming one of them and someone else: that one only.
    await bounceBack(returnPath, ["carol@other.example", "mallory@evil.example"], "550 5.1.1 no carol");
    await waitFor(async () => (await message(id)).status === "bounced", { timeoutMs: 10_000, intervalMs: POLL_MS, what: "carol bounced" });
    expect((await deliveries(id)).map((d) => [d.recipient, d.status])).toEqual([
      ["bob@partner.example", "delivered"],
      ["carol@other.example", "bounced"],
    ]);
  });

  it("a forged token, or a genuine one naming no message, does nothing but a log line", async () => {
    const { id, returnPath } = await sendOne("Not yours to bounce");
    const token = returnPath.slice("bounces+".length, returnPath.indexOf("@"));
    // The same message id with another MAC, and a MAC made with our key for a message that never was.
    const forged = `bounces+${token.slice(0, 26)}${token.slice(26).replace(/./g, (c) => (c === "a" ? "b" : "a"))}@agents.test`;
    const nowhere = paths.address(randomUUID());
    for (const to of [forged, nowhere]) await smtp().sendMail({ envelope: { from: "", to: [to] }, raw: report(to, "bob@partner.example", "550 5.1.1 forged") });
    const said = (msg: string) => s.logs.entries().some((e) => e.msg === msg);
    await waitFor(() => said("report to a return path with a token we did not make dropped") && said("report about a message that does not exist dropped"), {
      timeoutMs: 10_000,
      what: "both reports dropped",
    });
    expect((await message(id)).status).toBe("delivered");
  });
});
