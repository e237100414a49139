import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { TestDnsServer } from "@mam/testing/dns-server.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/**
 * Without SMTP_RELAY_URL, mail goes to the recipient domain's MX, found through DNS_SERVERS.
 * The MX here offers STARTTLS with a self-signed certificate, as many real ones do.
 */
describe("direct-to-MX delivery", () => {
  const dns = new TestDnsServer();
  const mx = new SmtpSink({ starttls: true });
  let s: Stack;
  beforeAll(async () => {
    const resolver = await dns.start();
    await mx.start();
    dns.set("partner.example", { MX: [{ exchange: "mx.partner.example", priority: 10 }] });
    dns.set("mx.partner.example", { A: ["127.0.0.1"] });
    s = new Stack({
      logLevel: "silent",
      // The MX is on loopback: allowed here, as an operator may (see the next tests for the default).
      mailboxEnv: { DNS_SERVERS: resolver, MX_PORT: String(mx.port), DELIVERY_GIVE_UP_AFTER_S: "0", OUTBOUND_ALLOW_PRIVATE: "true" },
    });
    await s.start();
  });
  afterAll(async () => {
    await s.stop();
    await mx.stop();
    await dns.stop();
  });

  it("delivers to the MX over STARTTLS (any certificate), as MAIL_DOMAIN, and bounces a domain without one", async () => {
    const t = await provisionTenant(s);
    const inbox = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "direct" } })).body;
    const ok = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, {
      key: inbox.apiKey,
      body: { to: "bob@partner.example", subject: "Direct", plainBody: "x", verified: true },
    });
    await waitFor(() => mx.received.length === 1, { timeoutMs: 10_000, what: "MX delivery" });
    expect(mx.received[0]!.to).toEqual(["bob@partner.example"]);
    expect(mx.received[0]!.secure).toBe(true);
    expect(mx.received[0]!.helo).toBe(s.mailDomain);
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${inbox.id}/messages/${ok.body.id}`, { key: inbox.apiKey })).body.status === "delivered", {
      timeoutMs: 5_000,
    });
    const none = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, {
      key: inbox.apiKey,
      body: { to: "x@nowhere.example", subject: "Lost", plainBody: "x", verified: true },
    });
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${inbox.id}/messages/${none.body.id}`, { key: inbox.apiKey })).body.status === "bounced", {
      timeoutMs: 10_000,
    });
  });
});

/** One message to a reachable domain and an unreachable one: the retries go to the second only. */
describe("direct-to-MX delivery with one domain down", () => {
  const dns = new TestDnsServer();
  const mx = new SmtpSink();
  let s: Stack;
  beforeAll(async () => {
    const resolver = await dns.start();
    await mx.start();
    dns.set("partner.example", { MX: [{ exchange: "127.0.0.1", priority: 10 }] });
    // Loopback too, but nothing listens there: connection refused, a transient failure.
    dns.set("down.example", { MX: [{ exchange: "127.0.0.2", priority: 10 }] });
    // RFC 7505: "this domain accepts no mail".
    dns.set("nomail.example", { MX: [{ exchange: ".", priority: 0 }] });
    s = new Stack({
      logLevel: "silent",
      mailboxEnv: {
        DNS_SERVERS: resolver,
        MX_PORT: String(mx.port),
        DELIVERY_RETRY_DELAYS_S: "1",
        DELIVERY_GIVE_UP_AFTER_S: "4",
        OUTBOUND_ALLOW_PRIVATE: "true",
      },
    });
    await s.start();
  });
  afterAll(async () => {
    await s.stop();
    await mx.stop();
    await dns.stop();
  });

  it("delivers the reachable recipient once, retries the other, and bounces it once it is too old", async () => {
    const t = await provisionTenant(s);
    const inbox = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "split" } })).body;
    const sent = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, {
      key: inbox.apiKey,
      body: { to: ["bob@partner.example", "carol@down.example"], subject: "Split", plainBody: "x", verified: true },
    });
    expect(sent.status).toBe(200);
    const status = async () => (await s.api("GET", `/v1/inboxes/${inbox.id}/messages/${sent.body.id}`, { key: inbox.apiKey })).body.status;
    await waitFor(() => mx.received.length === 1, { timeoutMs: 10_000, what: "bob's copy" });
    // Carol waits in the retry queue, not as an unacknowledged event holding the delivery
    // consumer's window (which a domain that is down would fill for everyone).
    const pendingAcks = () => s.iso.jetstream(async (jsm) => (await jsm.consumers.info(eventsStreamName(s.iso.prefix), "mailbox-delivery")).num_ack_pending);
    await waitFor(async () => (await pendingAcks()) === 0, { timeoutMs: 2_500, intervalMs: 50, what: "the event acknowledged while carol waits" });
    expect(await status()).not.toBe("bounced");
    await waitFor(async () => (await status()) === "bounced", { timeoutMs: 20_000, what: "carol bounced after the retries" });
    expect(mx.received.map((m) => m.to)).toEqual([["bob@partner.example"]]);
  });

  it("a domain with a null MX bounces at once, and nothing is sent anywhere", async () => {
    const t = await provisionTenant(s, "NullMx");
    const inbox = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "nullmx" } })).body;
    const before = mx.received.length;
    const sent = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, {
      key: inbox.apiKey,
      body: { to: "anyone@nomail.example", subject: "Nowhere", plainBody: "x", verified: true },
    });
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${inbox.id}/messages/${sent.body.id}`, { key: inbox.apiKey })).body.status === "bounced", {
      timeoutMs: 3_000,
      what: "bounced before any retry",
    });
    expect(mx.received.length).toBe(before);
  });
});

/**
 * By default direct delivery never connects to private, loopback or other special-use
 * addresses, whatever the recipient's DNS says: such a recipient bounces at once, saying why.
 */
describe("direct-to-MX delivery to private addresses", () => {
  const dns = new TestDnsServer();
  const mx = new SmtpSink();
  let s: Stack;
  beforeAll(async () => {
    const resolver = await dns.start();
    await mx.start();
    dns.set("inside.example", { MX: [{ exchange: "127.0.0.1", priority: 10 }] });
    // A name whose addresses are private in other spellings: RFC 1918 and IPv4-mapped loopback.
    dns.set("sneaky.example", { MX: [{ exchange: "mx.sneaky.example", priority: 10 }] });
    dns.set("mx.sneaky.example", { A: ["10.1.2.3"], AAAA: ["::ffff:127.0.0.1"] });
    s = new Stack({ logLevel: "warn", mailboxEnv: { DNS_SERVERS: resolver, MX_PORT: String(mx.port), SMTP_HELO_NAME: "out.agents.test" } });
    await s.start();
  });
  afterAll(async () => {
    await s.stop();
    await mx.stop();
    await dns.stop();
  });

  it("connects to none of them and bounces each recipient with the reason", async () => {
    const t = await provisionTenant(s);
    const inbox = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "walls" } })).body;
    const sent = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, {
      key: inbox.apiKey,
      body: { to: ["bob@inside.example", "eve@sneaky.example"], subject: "Inside", plainBody: "x", verified: true },
    });
    expect(sent.status).toBe(200);
    const get = async () => (await s.api("GET", `/v1/inboxes/${inbox.id}/messages/${sent.body.id}`, { key: inbox.apiKey })).body;
    await waitFor(async () => (await get()).deliveries.every((d: { status: string }) => d.status === "bounced"), { timeoutMs: 10_000, what: "both bounced" });
    const m = await get();
    expect(m.status).toBe("bounced");
    const reasons = Object.fromEntries(m.deliveries.map((d: { recipient: string; reason: string }) => [d.recipient, d.reason]));
    expect(reasons["bob@inside.example"]).toMatch(/only private or special-use addresses \(127\.0\.0\.1\)/);
    expect(reasons["eve@sneaky.example"]).toMatch(/mx\.sneaky\.example \[10\.1\.2\.3\].*mx\.sneaky\.example \[::ffff:127\.0\.0\.1\]/);
    expect(mx.connections).toBe(0);
    const said = s.logs.entries().filter((e) => e.msg === "delivery refused" && e.level === 40);
    expect(said.map((e) => e.reason).join("\n")).toMatch(/only private or special-use/);
  });
});
