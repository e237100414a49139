import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

type Delivery = { recipient: string; status: string; reason: string | null };

async function sendOne(s: Stack, username: string, to: string) {
  const t = await provisionTenant(s);
  const inbox = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username } })).body;
  const sent = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, { key: inbox.apiKey, body: { to, subject: "TLS", plainBody: "x", verified: true } });
  expect(sent.status).toBe(200);
  return async () => (await s.api("GET", `/v1/inboxes/${inbox.id}/messages/${sent.body.id}`, { key: inbox.apiKey })).body;
}

/**
 * A relay whose certificate is self-signed, as a new user's often is. Verified (the
 * default), nothing is sent, and the message says `deferred` and why, as the log does.
 */
describe("a relay with a self-signed certificate, verified", () => {
  const relay = new SmtpSink({ starttls: true });
  let s: Stack;
  beforeAll(async () => {
    await relay.start();
    s = new Stack({
      logLevel: "warn",
      mailboxEnv: { SMTP_RELAY_URL: `smtp://mailer:hunter2-relay-pw@127.0.0.1:${relay.port}`, DELIVERY_RETRY_DELAYS_S: "3600" },
    });
    await s.start();
  });
  afterAll(async () => {
    await s.stop();
    await relay.stop();
  });

  it("defers the message, naming the certificate, through the API and in the log, without the password", async () => {
    const get = await sendOne(s, "strict", "far@example.com");
    await waitFor(async () => (await get()).status === "deferred", { timeoutMs: 15_000, what: "deferred" });
    const m = await get();
    const d = m.deliveries as Delivery[];
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ recipient: "far@example.com", status: "deferred" });
    expect(d[0]!.reason).toMatch(/certificate/i);
    expect(relay.received).toHaveLength(0);
    const warned = s.logs.entries().filter((e) => e.level === 40 && e.msg === "delivery deferred");
    expect(warned.length).toBeGreaterThan(0);
    expect(String(warned[0]!.reason)).toMatch(/certificate/i);
    expect(s.logs.text()).not.toContain("hunter2-relay-pw");
  });

  it("the public contract knows deferred and per-recipient deliveries", async () => {
    const doc = (await s.api("GET", "/v1/openapi.json")).body;
    const message = doc.components.schemas.Message;
    expect(message.properties.status.enum).toContain("deferred");
    expect(JSON.stringify(doc.components.schemas.RecipientDelivery)).toContain("deferred");
  });
});

/** The same relay with SMTP_RELAY_TLS=opportunistic: delivered over TLS, certificate unchecked. */
describe("a relay with a self-signed certificate, opportunistic", () => {
  const relay = new SmtpSink({ starttls: true });
  let s: Stack;
  beforeAll(async () => {
    const url = await relay.start();
    s = new Stack({ logLevel: "silent", mailboxEnv: { SMTP_RELAY_URL: url, SMTP_RELAY_TLS: "opportunistic", SMTP_HELO_NAME: "out.agents.test" } });
    await s.start();
  });
  afterAll(async () => {
    await s.stop();
    await relay.stop();
  });

  it("delivers over STARTTLS, introducing itself with SMTP_HELO_NAME", async () => {
    const get = await sendOne(s, "relaxed", "far@example.com");
    await waitFor(async () => (await get()).status === "delivered", { timeoutMs: 15_000, what: "delivered" });
    expect(relay.received).toHaveLength(1);
    expect(relay.received[0]).toMatchObject({ secure: true, helo: "out.agents.test", to: ["far@example.com"] });
    expect((await get()).deliveries).toMatchObject([{ recipient: "far@example.com", status: "delivered", reason: null }]);
  });
});
