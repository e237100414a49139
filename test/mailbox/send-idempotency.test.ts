import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/** Requests fired at once from one client. */
const AT_ONCE = 20;

/**
 * Idempotency-Keys under concurrency, through HTTP, with two mailbox replicas (a request
 * lands on either): sends of a tenant are group-committed and a batch reads the keys of its
 * sends with one statement, so copies of one request may meet in one batch, in consecutive
 * ones, or in the two replicas at the same moment. Each key still sends once and answers
 * every copy alike.
 */
describe("Idempotency-Key: concurrent copies of a send", () => {
  const relay = new SmtpSink();
  let s: Stack;
  let inbox: { id: string; apiKey: string };

  const send = (key: string, subject: string) =>
    s.api("POST", `/v1/inboxes/${inbox.id}/send`, {
      key: inbox.apiKey,
      body: { to: "partner@example.com", subject, plainBody: "once", verified: true },
      headers: { "idempotency-key": key },
    });
  const sentWith = async (subject: string) =>
    (
      (await s.api("GET", `/v1/inboxes/${inbox.id}/messages?direction=outbound&limit=100`, { key: inbox.apiKey })).body.messages as { subject: string }[]
    ).filter((m) => m.subject === subject);
  const relayed = (subject: string) => relay.received.filter((r) => r.raw.toString().includes(`Subject: ${subject}`)).length;

  beforeAll(async () => {
    const relayUrl = await relay.start();
    s = new Stack({
      logLevel: "warn",
      mailboxes: 2,
      mailboxEnv: { SMTP_RELAY_URL: relayUrl },
      gatewayEnv: { RATE_LIMIT_MAX: "100000" },
    });
    await s.start();
    const t = await provisionTenant(s, "Idem");
    const r = await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "idem" } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    inbox = r.body;
  });
  afterAll(async () => {
    await s.stop();
    await relay.stop();
  });

  it("copies of one request with one key: one message sent, every answer the same", async () => {
    const answers = await Promise.all(Array.from({ length: AT_ONCE }, () => send("same-key", "One key")));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    for (const a of answers) expect(a.body).toEqual(answers[0]!.body);
    expect(await sentWith("One key")).toHaveLength(1);
    await waitFor(() => relayed("One key") >= 1, { timeoutMs: 10_000, what: "the message relayed" });
    // Retried after all of them were answered: the same answer again, nothing new.
    const late = await send("same-key", "One key");
    expect(late.body).toEqual(answers[0]!.body);
    expect(await sentWith("One key")).toHaveLength(1);
  });

  it("one key, two different requests at once: one of them is sent, the other is a 409", async () => {
    const answers = await Promise.all(Array.from({ length: AT_ONCE }, (_, i) => send("contested", i % 2 ? "Contested odd" : "Contested even")));
    const won = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 409);
    expect(won.length + refused.length).toBe(AT_ONCE);
    for (const a of won) expect(a.body).toEqual(won[0]!.body);
    const sent = [...(await sentWith("Contested odd")), ...(await sentWith("Contested even"))];
    expect(sent).toHaveLength(1);
    // Every copy of the winning request is answered, every copy of the other refused.
    const winner = sent[0]!.subject === "Contested odd" ? 1 : 0;
    expect(answers.map((_a, i) => (i % 2 === winner ? 200 : 409))).toEqual(answers.map((a) => a.status));
  });

  it("the same request written another way (its fields in another order, one address alone or in a list, in capitals) is the same request", async () => {
    const body = { to: "partner@example.com", subject: "Written twice", plainBody: "once", verified: true };
    const first = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, { key: inbox.apiKey, body, headers: { "idempotency-key": "rewritten" } });
    expect(first.status).toBe(200);
    const again = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, {
      key: inbox.apiKey,
      body: { verified: true, plainBody: "once", subject: "Written twice", to: ["Partner@Example.com"] },
      headers: { "idempotency-key": "rewritten" },
    });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(await sentWith("Written twice")).toHaveLength(1);
    const changed = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, {
      key: inbox.apiKey,
      body: { ...body, plainBody: "twice" },
      headers: { "idempotency-key": "rewritten" },
    });
    expect(changed.status).toBe(409);
  });

  it("distinct keys at once: each sends its own message", async () => {
    const answers = await Promise.all(Array.from({ length: AT_ONCE }, (_, i) => send(`distinct-${i}`, "Distinct keys")));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(AT_ONCE);
    expect(await sentWith("Distinct keys")).toHaveLength(AT_ONCE);
    await waitFor(() => relayed("Distinct keys") >= AT_ONCE, { timeoutMs: 20_000, what: "every message relayed" });
    expect(relayed("Distinct keys")).toBe(AT_ONCE);
  });
});
