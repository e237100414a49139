import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/**
 * Sends as the reference API describes them: only `to` and `subject` are required, a
 * recipient may be written as messages show their senders (`"Name" <address>`), and the
 * first-contact safeguard asks about every address a reply or a reply draft adds to its
 * conversation. A send the mailbox did not answer in time is not answered "retry shortly".
 */
describe("sending as the reference API describes it", () => {
  const relay = new SmtpSink();
  let s: Stack;
  let a: { id: string; apiKey: string; email: string };
  let b: { id: string; apiKey: string; email: string };
  let tenantId: string;
  let tk: string;

  const sentTo = async (before: number) => {
    await waitFor(() => relay.received.length > before, { timeoutMs: 10_000, what: "the relay's message" });
    return relay.received[before]!;
  };
  /** A message from B in A's inbox, to reply to. */
  const fromB = async (subject: string) => {
    const sent = await s.api("POST", `/v1/inboxes/${b.id}/send`, { key: b.apiKey, body: { to: a.email, subject, plainBody: "hello", verified: true } });
    expect(sent.status).toBe(200);
    let id = "";
    await waitFor(
      async () => {
        const list = await s.api("GET", `/v1/inboxes/${a.id}/messages?direction=inbound`, { key: a.apiKey });
        id = (list.body.messages as { id: string; subject: string }[]).find((m) => m.subject === subject)?.id ?? "";
        return id !== "";
      },
      { timeoutMs: 10_000, what: "B's message in A's inbox" },
    );
    return id;
  };

  beforeAll(async () => {
    s = new Stack({ logLevel: "warn", mailboxEnv: { SMTP_RELAY_URL: await relay.start() } });
    await s.start();
    const t = await provisionTenant(s);
    tenantId = t.tenant.id;
    tk = t.key.key;
    a = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "compat-a" } })).body;
    b = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "compat-b" } })).body;
  });
  afterAll(async () => {
    await s.stop();
    await relay.stop();
  });

  it("a send with neither plainBody nor htmlBody goes, with an empty text part", async () => {
    const before = relay.received.length;
    const sent = await s.api("POST", `/v1/inboxes/${a.id}/send`, { key: a.apiKey, body: { to: "empty@example.org", subject: "Ping", verified: true } });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    expect((await sentTo(before)).raw.toString()).toContain("Subject: Ping");
    const msg = (await s.api("GET", `/v1/inboxes/${a.id}/messages/${sent.body.id}`, { key: a.apiKey })).body;
    expect(msg).toMatchObject({ subject: "Ping", plainBody: "", htmlBody: null });
  });

  it('recipients written as "Name" <address> are sent to the address; a malformed one is still refused', async () => {
    const before = relay.received.length;
    const sent = await s.api("POST", `/v1/inboxes/${a.id}/send`, {
      key: a.apiKey,
      body: { to: '"Grace Hopper" <Grace@Example.org>', cc: ["Ada <ada@example.org>", "plain@example.org"], subject: "Named", plainBody: "x", verified: true },
    });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    expect((await sentTo(before)).to.sort()).toEqual(["ada@example.org", "grace@example.org", "plain@example.org"]);
    for (const to of ["Grace <grace@example.org", "<not an address>", "Grace <grace@example.org> <x@example.org>"]) {
      const bad = await s.api("POST", `/v1/inboxes/${a.id}/send`, { key: a.apiKey, body: { to, subject: "Bad", plainBody: "x", verified: true } });
      expect(bad.status, to).toBe(400);
      expect(bad.body.code).toBe("VALIDATION_ERROR");
    }
  });

  it("an attachment typed as a container (multipart/*, message/*) is refused, not sent empty or unencoded", async () => {
    for (const contentType of ["multipart/mixed", "Message/RFC822"]) {
      const r = await s.api("POST", `/v1/inboxes/${a.id}/send`, {
        key: a.apiKey,
        body: {
          to: "x@example.org",
          subject: "Typed",
          plainBody: "x",
          verified: true,
          attachments: [{ filename: "report.pdf", contentType, content: "AAAA" }],
        },
      });
      expect(r.status, contentType).toBe(400);
      expect(r.body.fields).toEqual([expect.objectContaining({ path: "attachments.0.contentType" })]);
    }
  });

  it("an address of the platform's own domain that no inbox holds bounces at once, and nothing goes out for it", async () => {
    const before = relay.received.length;
    const sent = await s.api("POST", `/v1/inboxes/${a.id}/send`, {
      key: a.apiKey,
      body: { to: [`nobody-here@${s.mailDomain}`, "far@example.org"], subject: "Half ours", plainBody: "x", verified: true },
    });
    expect(sent.status).toBe(200);
    const deliveries = async () =>
      (await s.api("GET", `/v1/inboxes/${a.id}/messages/${sent.body.id}`, { key: a.apiKey })).body.deliveries as {
        recipient: string;
        status: string;
        reason: string | null;
      }[];
    await waitFor(async () => (await deliveries()).every((d) => d.status !== "pending"), { timeoutMs: 10_000, what: "both outcomes" });
    expect((await deliveries()).toSorted((x, y) => x.recipient.localeCompare(y.recipient))).toEqual([
      expect.objectContaining({ recipient: "far@example.org", status: "delivered" }),
      expect.objectContaining({ recipient: `nobody-here@${s.mailDomain}`, status: "bounced", reason: "5.1.1 no inbox has this address" }),
    ]);
    expect((await sentTo(before)).to).toEqual(["far@example.org"]);
  });

  it("a reply goes to its conversation unasked, but a Cc or Bcc it adds must have written first, unless verified", async () => {
    const original = await fromB("Question");
    const plain = await s.api("POST", `/v1/inboxes/${a.id}/reply/${original}`, { key: a.apiKey, body: { plainBody: "answer" } });
    expect(plain.status, JSON.stringify(plain.body)).toBe(200);

    for (const extra of [{ bcc: "stranger@example.org" }, { cc: ["stranger@example.org"] }]) {
      const refused = await s.api("POST", `/v1/inboxes/${a.id}/reply/${original}`, { key: a.apiKey, body: { plainBody: "psst", ...extra } });
      expect(refused.status).toBe(403);
      expect(refused.body.error).toMatch(/First contact: stranger@example\.org/);
      const allAlso = await s.api("POST", `/v1/inboxes/${a.id}/reply-all/${original}`, { key: a.apiKey, body: { plainBody: "psst", ...extra } });
      expect(allAlso.status).toBe(403);
    }
    const before = relay.received.length;
    const vouched = await s.api("POST", `/v1/inboxes/${a.id}/reply/${original}`, {
      key: a.apiKey,
      body: { plainBody: "looping in", bcc: "stranger@example.org", verified: true },
    });
    expect(vouched.status, JSON.stringify(vouched.body)).toBe(200);
    expect((await sentTo(before)).to).toEqual(["stranger@example.org"]);
  });

  it("a reply draft may write to its conversation; an address it adds must have written first, unless verified", async () => {
    const original = await fromB("Draft me");
    const draft = async (body: Record<string, unknown>) => {
      const d = await s.api("POST", `/v1/inboxes/${a.id}/drafts`, { key: a.apiKey, body: { replyToMessageId: original, plainBody: "re", ...body } });
      expect(d.status, JSON.stringify(d.body)).toBe(201);
      return s.api("POST", `/v1/inboxes/${a.id}/drafts/${d.body.id}/send`, { key: a.apiKey });
    };
    expect((await draft({ to: b.email })).status).toBe(200);
    const refused = await draft({ to: b.email, bcc: "stranger@example.org" });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatch(/First contact: stranger@example\.org/);
    expect((await draft({ to: "stranger@example.org", verified: true })).status).toBe(200);
  });

  it("a send not answered in time says it may still go, without Retry-After; with an Idempotency-Key, retry shortly", async () => {
    await s.startGateway({ RPC_TIMEOUT_MS: "1000" });
    const hasty = s.client(s.gateways.length - 1);
    // The tenant's lock (see event-sourcing.ts), held so the mailbox's send waits past the gateway's timeout.
    const client = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await client.connect();
    const key = (await client.query<{ key: string }>("select hashtextextended($1, 0)::text as key", [`mailbox:${tenantId}`])).rows[0]!.key;
    await client.query("select pg_advisory_lock($1::bigint)", [key]);
    const body = { to: "late@example.org", subject: "Late", plainBody: "x", verified: true };
    try {
      const late = await hasty("POST", `/v1/inboxes/${a.id}/send`, { key: a.apiKey, body });
      expect(late.status).toBe(503);
      expect(late.body).toMatchObject({ code: "UNAVAILABLE", error: expect.stringMatching(/may still be carried out/) });
      expect(late.headers.get("retry-after")).toBeNull();
      const keyed = await hasty("POST", `/v1/inboxes/${a.id}/send`, {
        key: a.apiKey,
        body: { ...body, subject: "Late, keyed" },
        headers: { "idempotency-key": "late-1" },
      });
      expect(keyed.status).toBe(503);
      expect(keyed.headers.get("retry-after")).toBe("2");
      // A route that does not honour the header (an inbox's creation) is not made safe by it.
      const created = await hasty("POST", "/v1/inboxes", { key: tk, body: { username: "late-inbox" }, headers: { "idempotency-key": "late-2" } });
      expect(created.status).toBe(503);
      expect(created.headers.get("retry-after")).toBeNull();
    } finally {
      await client.query("select pg_advisory_unlock($1::bigint)", [key]);
      await client.end();
    }
    // It did go, once the lock was let go: what the answer warned of.
    await waitFor(
      async () => {
        const out = await s.api("GET", `/v1/inboxes/${a.id}/messages?direction=outbound&limit=100`, { key: a.apiKey });
        return (out.body.messages as { subject: string }[]).some((m) => m.subject === "Late");
      },
      { timeoutMs: 10_000, what: "the late send" },
    );
  });
});
