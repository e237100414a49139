import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

describe("drafts", () => {
  const relay = new SmtpSink();
  let s: Stack;
  let a: { id: string; apiKey: string; email: string };
  let b: { id: string; apiKey: string; email: string };

  beforeAll(async () => {
    s = new Stack({ logLevel: "warn", mailboxEnv: { SMTP_RELAY_URL: await relay.start() } });
    await s.start();
    const t = await provisionTenant(s);
    a = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "drafter" } })).body;
    b = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "peer" } })).body;
  });
  afterAll(async () => {
    await s.stop();
    await relay.stop();
  });

  it("create, read, merge-patch, list, send: the draft becomes a message and is gone", async () => {
    const c = await s.api("POST", `/v1/inboxes/${a.id}/drafts`, {
      key: a.apiKey,
      body: { to: "client@example.com", subject: "Offer", plainBody: "v1", verified: true },
    });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ to: ["client@example.com"], cc: [], bcc: [], subject: "Offer", plainBody: "v1", htmlBody: null, replyToMessageId: null });
    const p = await s.api("PATCH", `/v1/inboxes/${a.id}/drafts/${c.body.id}`, { key: a.apiKey, body: { plainBody: "v2", cc: "boss@example.com" } });
    expect(p.body).toMatchObject({ subject: "Offer", plainBody: "v2", cc: ["boss@example.com"], to: ["client@example.com"] });
    const list = await s.api("GET", `/v1/inboxes/${a.id}/drafts`, { key: a.apiKey });
    expect(list.body.drafts.map((d: { id: string }) => d.id)).toEqual([c.body.id]);
    expect(list.body.pagination).toEqual({ total: 1, limit: 50, offset: 0, nextCursor: null });

    const sent = await s.api("POST", `/v1/inboxes/${a.id}/drafts/${c.body.id}/send`, { key: a.apiKey });
    expect(sent.status).toBe(200);
    expect(sent.body).toMatchObject({ draftId: c.body.id, status: "sent", id: expect.any(String), threadId: expect.any(String) });
    expect((await s.api("GET", `/v1/inboxes/${a.id}/drafts/${c.body.id}`, { key: a.apiKey })).status).toBe(404);
    await waitFor(() => relay.received.length === 1, { timeoutMs: 10_000 });
    expect(relay.received[0]!.to.sort()).toEqual(["boss@example.com", "client@example.com"]);
    const msg = (await s.api("GET", `/v1/inboxes/${a.id}/messages/${sent.body.id}`, { key: a.apiKey })).body;
    expect(msg).toMatchObject({ subject: "Offer", plainBody: "v2", direction: "outbound" });
  });

  it("a reply draft continues the thread of the message it answers", async () => {
    await s.api("POST", `/v1/inboxes/${b.id}/send`, { key: b.apiKey, body: { to: a.email, subject: "Question", plainBody: "?", verified: true } });
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${a.id}/messages?direction=inbound`, { key: a.apiKey })).body.messages.length === 1, {
      timeoutMs: 10_000,
    });
    const q = (await s.api("GET", `/v1/inboxes/${a.id}/messages?direction=inbound`, { key: a.apiKey })).body.messages[0];
    const d = (await s.api("POST", `/v1/inboxes/${a.id}/drafts`, { key: a.apiKey, body: { to: b.email, plainBody: "Answer", replyToMessageId: q.id } })).body;
    const sent = await s.api("POST", `/v1/inboxes/${a.id}/drafts/${d.id}/send`, { key: a.apiKey });
    expect(sent.body.threadId).toBe(q.threadId);
    const m = (await s.api("GET", `/v1/inboxes/${a.id}/messages/${sent.body.id}`, { key: a.apiKey })).body;
    expect(m).toMatchObject({ subject: "Re: Question", inReplyTo: q.messageIdHeader });
  });

  it("sending one draft twice at once sends it once", async () => {
    const d = (
      await s.api("POST", `/v1/inboxes/${a.id}/drafts`, { key: a.apiKey, body: { to: "once@example.com", subject: "Once", plainBody: "x", verified: true } })
    ).body;
    const results = await Promise.all([1, 2, 3].map(() => s.api("POST", `/v1/inboxes/${a.id}/drafts/${d.id}/send`, { key: a.apiKey })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 404, 404]);
  });

  it("refuses to send an incomplete draft, and bad input is a 400", async () => {
    const d = (await s.api("POST", `/v1/inboxes/${a.id}/drafts`, { key: a.apiKey, body: { subject: "No one" } })).body;
    expect((await s.api("POST", `/v1/inboxes/${a.id}/drafts/${d.id}/send`, { key: a.apiKey })).status).toBe(400);
    expect((await s.api("POST", `/v1/inboxes/${a.id}/drafts`, { key: a.apiKey, body: { to: "bad" } })).status).toBe(400);
    expect(
      (await s.api("POST", `/v1/inboxes/${a.id}/drafts`, { key: a.apiKey, body: { replyToMessageId: "0190a1a2-0000-7000-8000-000000000000" } })).status,
    ).toBe(404);
    expect((await s.api("GET", `/v1/inboxes/${a.id}/drafts/${d.id}`, { key: a.apiKey })).body.to).toEqual([]);
  });

  it("another inbox's key sees no draft and changes nothing", async () => {
    const d = (await s.api("POST", `/v1/inboxes/${a.id}/drafts`, { key: a.apiKey, body: { to: "x@example.com", subject: "Private" } })).body;
    for (const [m, p] of [
      ["GET", `/v1/inboxes/${a.id}/drafts`],
      ["GET", `/v1/inboxes/${a.id}/drafts/${d.id}`],
      ["PATCH", `/v1/inboxes/${a.id}/drafts/${d.id}`],
      ["DELETE", `/v1/inboxes/${a.id}/drafts/${d.id}`],
      ["POST", `/v1/inboxes/${a.id}/drafts/${d.id}/send`],
      ["GET", `/v1/inboxes/${b.id}/drafts/${d.id}`],
    ] as const) {
      expect((await s.api(m, p, { key: b.apiKey, body: m === "PATCH" ? { subject: "pwned" } : undefined })).status, `${m} ${p}`).toBe(404);
    }
    expect((await s.api("GET", `/v1/inboxes/${a.id}/drafts/${d.id}`, { key: a.apiKey })).body.subject).toBe("Private");
    expect((await s.api("DELETE", `/v1/inboxes/${a.id}/drafts/${d.id}`, { key: a.apiKey })).body).toEqual({ deleted: true, id: d.id });
  });
});
