import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

type Line = Record<string, unknown> & { service: string; msg: string };
type Inbox = { id: string; email: string; apiKey: string };

/**
 * The ids a user or an operator quotes, found on the lines of every service the work went
 * through: a send's X-Request-Id from the gateway to identity and the mailbox (its command,
 * its delivery to a local inbox and to an outside server, the filing), and an SMTP
 * delivery's queue id from smtp-ingress to the mailbox's filing. Debug level: the worker
 * steps say themselves only there.
 */
describe("log lines carry the request and message ids across services", () => {
  const relay = new SmtpSink();
  let s: Stack;
  let a: Inbox;
  let b: Inbox;

  const lines = () => s.logs.entries() as Line[];
  const linesWith = (field: string, value: unknown) => lines().filter((l) => l[field] === value);
  const inbound = async (i: Inbox) =>
    (await s.api("GET", `/v1/inboxes/${i.id}/messages?direction=inbound&limit=100`, { key: i.apiKey })).body.messages as { id: string; subject: string }[];

  beforeAll(async () => {
    const relayUrl = await relay.start();
    s = new Stack({ logLevel: "debug", smtp: true, mailboxEnv: { SMTP_RELAY_URL: relayUrl }, smtpEnv: { DIRECTORY_SNAPSHOT_WAIT_MS: "1000" } });
    await s.start();
    const t = await provisionTenant(s, "Logs");
    a = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "log-a" } })).body;
    b = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "log-b" } })).body;
    expect([a.id, b.id]).toEqual([expect.any(String), expect.any(String)]);
  });
  afterAll(async () => {
    await s?.stop();
    await relay.stop();
  });

  it("a send's X-Request-Id is on the gateway's, identity's and the mailbox's lines, and its message id on the delivery's", async () => {
    const requestId = `support-case-${Date.now()}`;
    const r = await s.api("POST", `/v1/inboxes/${a.id}/send`, {
      key: a.apiKey,
      headers: { "X-Request-Id": requestId },
      body: { to: [b.email, "partner@example.com"], subject: "Traced", plainBody: "Follow me", verified: true },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.headers.get("x-request-id")).toBe(requestId);
    const messageId = r.body.id as string;
    await waitFor(() => relay.received.length === 1, { timeoutMs: 10_000, what: "relay delivery" });
    await waitFor(async () => (await inbound(b)).some((m) => m.subject === "Traced"), { timeoutMs: 10_000, what: "local copy" });
    const copyId = (await inbound(b)).find((m) => m.subject === "Traced")!.id;
    // The worker's last step may log just after the copy becomes readable.
    await waitFor(() => linesWith("msg", "filed").some((l) => l.filedMessageId === copyId), { timeoutMs: 5_000, what: "filing line" });

    const traced = linesWith("requestId", requestId);
    // The gateway's access line, identity resolving the key, the mailbox answering the command.
    expect(traced.find((l) => l.service === "gateway" && l.msg === "request")).toMatchObject({ method: "POST", status: 200 });
    expect(traced.some((l) => l.service === "identity" && l.msg === "rpc")).toBe(true);
    expect(traced.find((l) => l.service === "mailbox" && l.msg === "rpc")).toMatchObject({ rpc: expect.stringContaining("send"), ok: true });
    // The delivery worker, handling the event the command recorded: both ids, on every step.
    expect(traced.find((l) => l.service === "mailbox" && l.msg === "delivery attempt")).toMatchObject({ messageId, recipients: 1 });
    expect(traced.find((l) => l.service === "mailbox" && l.msg === "filed")).toMatchObject({
      messageId,
      inboxId: b.id,
      filedMessageId: copyId,
      result: "filed",
    });
    expect(new Set(traced.map((l) => l.service))).toEqual(new Set(["gateway", "identity", "mailbox"]));
    // Nothing logged about this message outside its request (the worker's lines included).
    expect(linesWith("messageId", messageId).every((l) => l.requestId === requestId)).toBe(true);
  });

  it("mail accepted over SMTP is traced by its queue id from smtp-ingress to the filing", async () => {
    // smtp-ingress learns of a new inbox through events: retried until it takes the address.
    let response = "";
    await waitFor(
      async () => {
        const info = await nodemailer
          .createTransport({ host: "127.0.0.1", port: s.smtp!.port, secure: false, ignoreTLS: true })
          .sendMail({ from: "ada@example.org", to: a.email, subject: "Inbound traced", text: "Hello" })
          .catch(() => undefined);
        response = info?.response ?? "";
        return !!info;
      },
      { timeoutMs: 10_000, what: "SMTP acceptance" },
    );
    const queueId = /queued as (\S+)/.exec(response)?.[1];
    expect(queueId, response).toBeTruthy();
    await waitFor(async () => (await inbound(a)).some((m) => m.subject === "Inbound traced"), { timeoutMs: 10_000, what: "filed" });
    const filedId = (await inbound(a)).find((m) => m.subject === "Inbound traced")!.id;
    await waitFor(() => linesWith("filedMessageId", filedId).length > 0, { timeoutMs: 5_000, what: "filing line" });

    const accepted = linesWith("queueId", queueId).find((l) => l.service === "smtp-ingress" && l.msg === "mail accepted");
    expect(accepted).toMatchObject({ sessionId: expect.any(String), recipients: 1 });
    expect(linesWith("filedMessageId", filedId)).toEqual([expect.objectContaining({ service: "mailbox", msg: "filed", queueId, inboxId: a.id })]);
  });

  it("an X-Request-Id that is not a short safe token is replaced by one of ours", async () => {
    for (const given of ["two words", "x".repeat(300), 'quote"inside']) {
      const r = await s.api("GET", "/v1/inboxes", { key: a.apiKey, headers: { "X-Request-Id": given } });
      expect(r.status).toBe(200);
      const replaced = r.headers.get("x-request-id")!;
      expect(replaced).toMatch(/^[0-9a-f-]{36}$/);
      expect(linesWith("requestId", given)).toEqual([]);
      const access = linesWith("requestId", replaced).find((l) => l.service === "gateway" && l.msg === "request");
      expect(access).toMatchObject({ method: "GET", path: "/v1/inboxes", status: 200 });
    }
  });
});
