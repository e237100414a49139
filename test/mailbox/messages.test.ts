import { Resolver } from "node:dns/promises";
import { request as httpRequest } from "node:http";
import { authenticate } from "mailauth";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { TestDnsServer } from "@mam/testing/dns-server.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { inboxMessagesQuery } from "@mam/mailbox/read/message-views.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/**
 * End to end through HTTP only, with a local SMTP server as the relay: inbox A (one
 * tenant) writes to the outside world and to inbox B (another tenant); B answers.
 */
describe("sending, delivering and reading messages", () => {
  const dns = new TestDnsServer();
  const relay = new SmtpSink();
  let s: Stack;
  let a: { id: string; apiKey: string; email: string };
  let b: { id: string; apiKey: string; email: string };
  let dnsAddress: string;
  let otherWorkspaceKey: string;
  let alpha: { tenantId: string; key: string; workspaceId: string };

  const inboxMessages = async (inbox: { id: string; apiKey: string }, q = "") =>
    (await s.api("GET", `/v1/inboxes/${inbox.id}/messages${q}`, { key: inbox.apiKey })).body;
  const waitForCount = (inbox: { id: string; apiKey: string }, n: number, q = "?direction=inbound") =>
    waitFor(async () => (await inboxMessages(inbox, q)).messages.length >= n, { timeoutMs: 10_000, what: `${n} messages` });

  beforeAll(async () => {
    dnsAddress = await dns.start();
    const relayUrl = await relay.start();
    s = new Stack({
      logLevel: "warn",
      mailboxEnv: { SMTP_RELAY_URL: relayUrl, DNS_SERVERS: dnsAddress, DELIVERY_RETRY_DELAYS_S: "1" },
      gatewayEnv: { LARGE_BODIES_PER_KEY: "1" },
    });
    await s.start();
    const ta = await provisionTenant(s, "Alpha");
    const tb = await provisionTenant(s, "Beta");
    const wa = (await s.api("POST", "/v1/workspaces", { key: ta.key.key, body: { name: "A" } })).body.id;
    const wb = (await s.api("POST", "/v1/workspaces", { key: tb.key.key, body: { name: "B" } })).body.id;
    const ra = await s.api("POST", "/v1/inboxes", { key: ta.key.key, body: { username: "alice", displayName: "Alice Agent", workspaceId: wa } });
    const rb = await s.api("POST", "/v1/inboxes", { key: tb.key.key, body: { username: "bob", workspaceId: wb } });
    expect([ra.status, rb.status], JSON.stringify([ra.body, rb.body])).toEqual([201, 201]);
    a = ra.body;
    b = rb.body;
    alpha = { tenantId: ta.tenant.id, key: ta.key.key, workspaceId: wa };
    const wa2 = (await s.api("POST", "/v1/workspaces", { key: ta.key.key, body: { name: "A2" } })).body.id;
    otherWorkspaceKey = (await s.api("POST", `/v1/workspaces/${wa2}/keys`, { key: ta.key.key, body: {} })).body.key;
    // Publish the platform's DKIM key where the verifier will look.
    const platform = (await s.api("GET", "/v1/platform/domain", { key: s.operatorKey })).body;
    const dkim = platform.dnsRecords.find((r: { purpose: string }) => r.purpose === "dkim");
    dns.set(dkim.name, { TXT: [dkim.value] });
  });
  afterAll(async () => {
    await s.stop();
    await relay.stop();
    await dns.stop();
  });

  it("first contact is refused unless verified: true", async () => {
    const r = await s.api("POST", `/v1/inboxes/${a.id}/send`, { key: a.apiKey, body: { to: "partner@example.com", subject: "Hi", plainBody: "x" } });
    expect(r.status).toBe(403);
    expect(r.body.error).toContain("partner@example.com");
    expect(relay.received).toHaveLength(0);
  });

  it("sends outside through the relay, DKIM-signed; the stored raw is the bytes sent", async () => {
    const r = await s.api("POST", `/v1/inboxes/${a.id}/send`, {
      key: a.apiKey,
      body: { to: ["partner@example.com"], subject: "Proposal", plainBody: "Hello partner", htmlBody: "<p>Hello partner</p>", verified: true },
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      id: expect.any(String),
      threadId: expect.any(String),
      status: "sent",
      messageId: expect.stringMatching(/^<.+@agents\.test>$/),
    });
    await waitFor(() => relay.received.length === 1, { timeoutMs: 10_000, what: "relay delivery" });
    const got = relay.received[0]!;
    expect(got.to).toEqual(["partner@example.com"]);
    // The envelope sender is the message's return path, where its bounces come back; the From header stays A's.
    expect(got.from).toMatch(/^bounces\+[a-z2-7]{16,56}@agents\.test$/);

    const resolver = new Resolver();
    resolver.setServers([dnsAddress]);
    const auth = await authenticate(got.raw, {
      ip: "127.0.0.1",
      helo: "localhost",
      sender: got.from,
      resolver: (name: string, type: string) => resolver.resolve(name, type as "TXT") as Promise<never>,
    });
    expect(auth.dkim.results.map((x: { status: { result: string } }) => x.status.result)).toContain("pass");

    const raw = await fetch(`http://127.0.0.1:${s.gateways[0]!.port}/v1/inboxes/${a.id}/messages/${r.body.id}/raw`, { headers: { "x-api-key": a.apiKey } });
    expect(raw.headers.get("content-type")).toContain("message/rfc822");
    const stored = Buffer.from(await raw.arrayBuffer());
    expect(stored.equals(got.raw)).toBe(true);
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${a.id}/messages/${r.body.id}`, { key: a.apiKey })).body.status === "delivered", {
      timeoutMs: 5_000,
    });
  });

  let sentToB: { id: string; threadId: string };
  it("delivers locally to another tenant's inbox, threaded, with attachments byte for byte", async () => {
    const pdf = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 256));
    const before = relay.received.length;
    const r = await s.api("POST", `/v1/inboxes/${a.id}/send`, {
      key: a.apiKey,
      body: {
        to: b.email,
        subject: "Contract",
        plainBody: "Please sign.",
        verified: true,
        attachments: [{ filename: "contract.pdf", contentType: "application/pdf", content: pdf.toString("base64") }],
      },
    });
    expect(r.status).toBe(200);
    sentToB = r.body;
    await waitForCount(b, 1);
    const inbound = (await inboxMessages(b, "?direction=inbound")).messages[0];
    expect(inbound).toMatchObject({
      direction: "inbound",
      subject: "Contract",
      plainBody: "Please sign.",
      fromAddress: a.email,
      fromName: "Alice Agent",
      isRead: false,
    });
    expect(inbound.attachments).toEqual([{ id: expect.any(String), filename: "contract.pdf", contentType: "application/pdf", sizeBytes: 3000 }]);
    const att = await fetch(`http://127.0.0.1:${s.gateways[0]!.port}/v1/inboxes/${b.id}/messages/${inbound.id}/attachments/${inbound.attachments[0].id}`, {
      headers: { "x-api-key": b.apiKey },
    });
    expect(att.headers.get("content-type")).toBe("application/pdf");
    expect(Buffer.from(await att.arrayBuffer()).equals(pdf)).toBe(true);
    // Local: no SMTP round trip.
    expect(relay.received.length).toBe(before);
    // Reading marks it read.
    expect(inbound.labels).toContain("unread");
    const read = await s.api("GET", `/v1/inboxes/${b.id}/messages/${inbound.id}`, { key: b.apiKey });
    expect(read.body.isRead).toBe(true);
    // The label "unread" follows the flag, both ways, on the message and its thread.
    expect(read.body.labels).toEqual(["received"]);
    const threadLabels = async () =>
      ((await s.api("GET", `/v1/messages?group=thread&inboxId=${b.id}`, { key: b.apiKey })).body.messages as { threadId: string; labels?: string[] }[]).find(
        (t) => t.threadId === inbound.threadId,
      )?.labels;
    const unreadAgain = await s.api("PATCH", `/v1/inboxes/${b.id}/messages/${inbound.id}`, { key: b.apiKey, body: { isRead: false } });
    expect(unreadAgain.body).toMatchObject({ isRead: false, labels: ["received", "unread"] });
    const readAgain = await s.api("PATCH", `/v1/inboxes/${b.id}/messages/${inbound.id}`, { key: b.apiKey, body: { isRead: true } });
    expect(readAgain.body).toMatchObject({ isRead: true, labels: ["received"] });
    expect(await threadLabels()).toEqual(["received"]);
  });

  it("B replies; A sees the reply in the same thread, and may now write to B without verified", async () => {
    const inbound = (await inboxMessages(b, "?direction=inbound")).messages[0];
    const rep = await s.api("POST", `/v1/inboxes/${b.id}/reply/${inbound.id}`, { key: b.apiKey, body: { plainBody: "Signed." } });
    expect(rep.status).toBe(200);
    expect(rep.body.threadId).toBe(inbound.threadId);
    await waitForCount(a, 1);
    const answer = (await inboxMessages(a, "?direction=inbound")).messages[0];
    expect(answer).toMatchObject({ subject: "Re: Contract", plainBody: "Signed.", threadId: sentToB.threadId, inReplyTo: expect.stringContaining(sentToB.id) });
    const thread = (await s.api("GET", `/v1/inboxes/${a.id}/threads/${sentToB.threadId}`, { key: a.apiKey })).body;
    expect(thread.messageCount).toBe(2);
    expect(thread.messages.map((m: { direction: string }) => m.direction)).toEqual(["outbound", "inbound"]);
    const again = await s.api("POST", `/v1/inboxes/${a.id}/send`, { key: a.apiKey, body: { to: b.email, subject: "Thanks", plainBody: "!" } });
    expect(again.status).toBe(200);
  });

  it("an Idempotency-Key makes a retried send return the first answer and send nothing twice", async () => {
    const before = relay.received.length;
    const body = { to: "partner@example.com", subject: "Once", plainBody: "only once", verified: true };
    const headers = { "idempotency-key": "retry-1" };
    const [r1, r2] = [
      await s.api("POST", `/v1/inboxes/${a.id}/send`, { key: a.apiKey, body, headers }),
      await s.api("POST", `/v1/inboxes/${a.id}/send`, { key: a.apiKey, body, headers }),
    ];
    expect(r2.body).toEqual(r1.body);
    await waitFor(() => relay.received.length === before + 1, { timeoutMs: 10_000 });
    const other = await s.api("POST", `/v1/inboxes/${a.id}/send`, { key: a.apiKey, body: { ...body, subject: "Different" }, headers });
    expect(other.status).toBe(409);
    const sent = (await inboxMessages(a, "?direction=outbound")).messages.filter((m: { subject: string }) => m.subject === "Once");
    expect(sent).toHaveLength(1);
  });

  it("a permanent refusal by the relay is a bounce", async () => {
    relay.refuse.add("nobody@example.com");
    const r = await s.api("POST", `/v1/inboxes/${a.id}/send`, {
      key: a.apiKey,
      body: { to: "nobody@example.com", subject: "Bounce", plainBody: "x", verified: true },
    });
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${a.id}/messages/${r.body.id}`, { key: a.apiKey })).body.status === "bounced", {
      timeoutMs: 10_000,
    });
  });

  it("reply-all and forward: recipients, subjects, threads", async () => {
    const inbound = (await inboxMessages(a, "?direction=inbound")).messages[0];
    const all = await s.api("POST", `/v1/inboxes/${a.id}/reply-all/${inbound.id}`, { key: a.apiKey, body: { plainBody: "To all" } });
    const sentAll = (await s.api("GET", `/v1/inboxes/${a.id}/messages/${all.body.id}`, { key: a.apiKey })).body;
    expect(sentAll.toAddresses).toEqual([b.email]);
    expect(sentAll.threadId).toBe(inbound.threadId);
    const fwd = await s.api("POST", `/v1/inboxes/${a.id}/forward/${inbound.id}`, {
      key: a.apiKey,
      body: { to: "partner@example.com", plainBody: "FYI", verified: true },
    });
    const sentFwd = (await s.api("GET", `/v1/inboxes/${a.id}/messages/${fwd.body.id}`, { key: a.apiKey })).body;
    expect(sentFwd.subject).toBe("Fwd: Re: Contract");
    expect(sentFwd.threadId).not.toBe(inbound.threadId);
    expect(sentFwd.plainBody).toContain("---------- Forwarded message ---------");
  });

  it("lists newest first with paging and direction; flags; soft delete", async () => {
    const page = await inboxMessages(a, "?limit=2&offset=0");
    expect(page.messages).toHaveLength(2);
    const all = await inboxMessages(a, "?limit=100");
    expect(page.pagination).toEqual({ total: all.messages.length, limit: 2, offset: 0, nextCursor: expect.any(String) });
    const times = all.messages.map((m: { createdAt: string }) => m.createdAt);
    expect([...times].sort().reverse()).toEqual(times);
    // Every message served carries its bodies, on later pages too (by offset and by cursor)…
    const bodies = (list: { messages: { id: string; plainBody: string | null; htmlBody: string | null }[] }) =>
      list.messages.map((m) => [m.id, m.plainBody, m.htmlBody]);
    expect(all.messages.filter((m: { plainBody: string | null }) => m.plainBody).length).toBeGreaterThan(3);
    expect(bodies(await inboxMessages(a, "?limit=2&offset=2"))).toEqual(bodies({ messages: all.messages.slice(2, 4) }));
    expect(bodies(await inboxMessages(a, `?limit=2&cursor=${page.pagination.nextCursor}`))).toEqual(bodies({ messages: all.messages.slice(2, 4) }));
    // …while the row read past a page's end (only to tell that another page follows) comes without them.
    expect(all.messages[2].plainBody).toEqual(expect.any(String));
    const inbox = { inbox_id: a.id, workspace_id: alpha.workspaceId, tenant_id: alpha.tenantId };
    const withLookAhead = await inboxMessagesQuery(s.mailbox!.ctx.db, inbox, undefined, { limit: 1, offset: 1, after: undefined }).execute();
    expect(withLookAhead.map((r) => [r.message_id, r.plain_body?.toString("utf8") ?? null])).toEqual([
      [all.messages[1].id, all.messages[1].plainBody],
      [all.messages[2].id, null],
    ]);
    const target = all.messages[0];
    const star = await s.api("PATCH", `/v1/inboxes/${a.id}/messages/${target.id}`, { key: a.apiKey, body: { isStarred: true, isArchived: true } });
    expect(star.body).toMatchObject({ isStarred: true, isArchived: true });
    expect((await s.api("DELETE", `/v1/inboxes/${a.id}/messages/${target.id}`, { key: a.apiKey })).body).toEqual({ deleted: true, id: target.id });
    expect((await s.api("GET", `/v1/inboxes/${a.id}/messages/${target.id}`, { key: a.apiKey })).status).toBe(404);
    expect((await inboxMessages(a, "?limit=100")).pagination.total).toBe(all.messages.length - 1);
  });

  it("bad input: clear 4xx and nothing sent", async () => {
    // Let earlier sends finish delivering first (the forward was deleted from the listing, not unsent).
    await waitFor(async () => (await inboxMessages(a, "?direction=outbound&limit=100")).messages.every((m: { status: string }) => m.status !== "sent"), {
      timeoutMs: 10_000,
    });
    await waitFor(() => relay.received.some((m) => m.raw.includes("FYI")), { timeoutMs: 10_000, what: "the forward at the relay" });
    const before = relay.received.length;
    const cases: [unknown, number][] = [
      [{ to: "not-an-address", subject: "x", plainBody: "x", verified: true }, 400],
      [{ to: "ok@example.com", subject: "Hi\r\nBcc: victim@example.com", plainBody: "x", verified: true }, 400],
      [{ to: "ok@example.com\r\nBcc: victim@example.com", subject: "x", plainBody: "x", verified: true }, 400],
      // No subject (a body is optional, as in the reference; a subject is not).
      [{ to: "ok@example.com", plainBody: "x", verified: true }, 400],
      // Over the 10 MiB of attachments a message may carry (the body itself is accepted) ...
      [{ to: "ok@example.com", subject: "x", plainBody: "x", verified: true, attachments: [{ filename: "a.bin", content: "A".repeat(14_400_000) }] }, 413],
      // ... and a body over the gateway's limit.
      [{ to: "ok@example.com", subject: "x", plainBody: "x", verified: true, attachments: [{ filename: "a.bin", content: "A".repeat(17_000_000) }] }, 413],
      [{ to: "ok@example.com", subject: "x", plainBody: "x", verified: true, attachments: [{ filename: "../etc/passwd", content: "AA==" }] }, 400],
    ];
    for (const [body, status] of cases) {
      const r = await s.api("POST", `/v1/inboxes/${a.id}/send`, { key: a.apiKey, body });
      expect(r.status, JSON.stringify(body).slice(0, 80)).toBe(status);
    }
    expect((await s.api("POST", `/v1/inboxes/${a.id}/reply/0190a1a2-0000-7000-8000-000000000000`, { key: a.apiKey, body: { plainBody: "x" } })).status).toBe(
      404,
    );
    expect((await s.api("GET", `/v1/inboxes/${a.id}/messages/0190a1a2-0000-7000-8000-000000000000`, { key: a.apiKey })).status).toBe(404);
    await new Promise((r) => setTimeout(r, 300));
    expect(relay.received.length).toBe(before);
  });

  it("another inbox's key, and another workspace's key, see none of it", async () => {
    const mine = (await inboxMessages(a)).messages[0];
    const before = await inboxMessages(a, "?limit=100");
    for (const key of [b.apiKey, otherWorkspaceKey])
      for (const [m, p] of [
        ["GET", `/v1/inboxes/${a.id}/messages`],
        ["GET", `/v1/inboxes/${a.id}/messages/${mine.id}`],
        ["GET", `/v1/inboxes/${a.id}/messages/${mine.id}/raw`],
        ["GET", `/v1/inboxes/${a.id}/threads/${mine.threadId}`],
        ["PATCH", `/v1/inboxes/${a.id}/messages/${mine.id}`],
        ["DELETE", `/v1/inboxes/${a.id}/messages/${mine.id}`],
        ["POST", `/v1/inboxes/${a.id}/send`],
        ["POST", `/v1/inboxes/${a.id}/reply/${mine.id}`],
        ["GET", `/v1/inboxes/${a.id}/messages/${mine.id}/attachments`],
        ["POST", `/v1/inboxes/${a.id}/forward/${mine.id}`],
        ["POST", `/v1/inboxes/${a.id}/drafts`],
        ["GET", `/v1/inboxes/${b.id}/messages/${mine.id}`],
      ] as const) {
        const r = await s.api(m, p, {
          key,
          body: m === "GET" ? undefined : { to: "x@example.com", subject: "x", plainBody: "x", isRead: true, verified: true },
        });
        // b's own inbox answers b's key, but not with a's message: still 404.
        expect(r.status, `${m} ${p}`).toBe(404);
      }
    expect(await inboxMessages(a, "?limit=100")).toEqual(before);
  });

  it("the tenant-wide view: folders, thread grouping, counts, scope", async () => {
    const all = (await inboxMessages(a, "?limit=100")).messages;
    const sent = (await s.api("GET", "/v1/messages?folder=sent&limit=100", { key: a.apiKey })).body;
    expect(sent.messages.map((m: { id: string }) => m.id).sort()).toEqual(
      all
        .filter((m: { direction: string }) => m.direction === "outbound")
        .map((m: { id: string }) => m.id)
        .sort(),
    );
    expect(sent.messages[0]).toMatchObject({ inboxId: a.id, inboxUsername: "alice", inboxDomain: s.mailDomain, direction: "outbound" });
    const inbox = (await s.api("GET", "/v1/messages?folder=inbox", { key: a.apiKey })).body.messages;
    expect(inbox.every((m: { direction: string }) => m.direction === "inbound")).toBe(true);
    const trash = (await s.api("GET", "/v1/messages?folder=trash", { key: a.apiKey })).body.messages;
    expect(trash).toHaveLength(1);
    const threads = (await s.api("GET", "/v1/messages?folder=sent&group=thread&limit=100", { key: a.apiKey })).body.messages;
    const contract = threads.find((m: { threadId: string }) => m.threadId === sentToB.threadId);
    expect(contract.threadCount).toBeGreaterThanOrEqual(2);
    expect(new Set(threads.map((m: { threadId: string }) => m.threadId)).size).toBe(threads.length);
    const counts = (await s.api("GET", "/v1/messages/folders/counts", { key: a.apiKey })).body;
    expect(counts).toEqual({
      inbox: { unread: expect.any(Number), total: inbox.length },
      sent: { total: sent.messages.length },
      starred: { total: 0 },
      archived: { total: 0 },
      trash: { total: 1 },
    });
    const theirs = (await s.api("GET", "/v1/messages?folder=sent&limit=100", { key: b.apiKey })).body.messages;
    expect(theirs.some((m: { inboxId: string }) => m.inboxId === a.id)).toBe(false);
    expect((await s.api("GET", "/v1/messages?folder=nope", { key: a.apiKey })).status).toBe(400);
  });
  it("a page larger than one NATS message still arrives whole", async () => {
    const c = (await s.api("POST", "/v1/inboxes", { key: otherWorkspaceKey, body: { username: "bulky" } })).body;
    const bodies = Array.from({ length: 5 }, (_, i) => `${i} `.repeat(125_000));
    for (const [i, plainBody] of bodies.entries()) {
      const r = await s.api("POST", `/v1/inboxes/${a.id}/send`, { key: a.apiKey, body: { to: c.email, subject: `bulky ${i}`, plainBody, verified: true } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    await waitFor(async () => (await inboxMessages(c)).messages?.length === 5, { timeoutMs: 10_000, what: "five bulky messages" });
    const page = await s.api("GET", `/v1/inboxes/${c.id}/messages?limit=10`, { key: c.apiKey });
    expect(page.status).toBe(200);
    // More than NATS carries in one message (1 MiB by default).
    expect(JSON.stringify(page.body).length).toBeGreaterThan(1_200_000);
    const got = page.body.messages.map((m: { subject: string; plainBody: string }) => [m.subject, m.plainBody]).sort();
    expect(got).toEqual(bodies.map((b, i) => [`bulky ${i}`, b]));
  });
  it("a send with megabytes of attachments goes through whole, and downloads intact", async () => {
    const pdf = Buffer.from(Array.from({ length: 3_000_000 }, (_, i) => (i * 13) % 256));
    const r = await s.api("POST", `/v1/inboxes/${a.id}/send`, {
      key: a.apiKey,
      body: {
        to: b.email,
        subject: "heavy",
        plainBody: "see attached",
        verified: true,
        attachments: [{ filename: "report.pdf", contentType: "application/pdf", content: pdf.toString("base64") }],
      },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    await waitFor(async () => (await inboxMessages(b, "?direction=inbound")).messages.some((m: { subject: string }) => m.subject === "heavy"), {
      timeoutMs: 10_000,
      what: "the heavy message",
    });
    const m = (await inboxMessages(b, "?direction=inbound")).messages.find((x: { subject: string }) => x.subject === "heavy");
    expect(m.attachments).toMatchObject([{ filename: "report.pdf", contentType: "application/pdf", sizeBytes: pdf.length }]);
    const got = await fetch(`http://127.0.0.1:${s.gateways[0]!.port}/v1/inboxes/${b.id}/messages/${m.id}/attachments/${m.attachments[0].id}`, {
      headers: { "x-api-key": b.apiKey },
    });
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(pdf)).toBe(true);
  });
  it("large bodies in flight are capped per key: 429 with Retry-After, free again once the first ends", async () => {
    const port = s.gateways[0]!.port;
    const body = Buffer.from(
      JSON.stringify({
        to: b.email,
        subject: "slow upload",
        plainBody: "x",
        verified: true,
        attachments: [{ filename: "a.bin", content: Buffer.alloc(1_500_000, 7).toString("base64") }],
      }),
    );
    // The first one arrives slowly: half now, the rest later.
    const first = new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          host: "127.0.0.1",
          port,
          method: "POST",
          path: `/v1/inboxes/${a.id}/send`,
          headers: { "x-api-key": a.apiKey, "content-type": "application/json", "content-length": body.length },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode!));
        },
      );
      req.on("error", reject);
      req.write(body.subarray(0, body.length / 2));
      setTimeout(() => req.end(body.subarray(body.length / 2)), 1_000);
    });
    await new Promise((r) => setTimeout(r, 300));
    const second = await fetch(`http://127.0.0.1:${port}/v1/inboxes/${a.id}/send`, {
      method: "POST",
      headers: { "x-api-key": a.apiKey, "content-type": "application/json" },
      body,
    });
    expect(second.status).toBe(429);
    expect(second.headers.get("retry-after")).toBe("1");
    expect(((await second.json()) as { code: string }).code).toBe("RATE_LIMITED");
    // Small requests are not held up, and another key has its own room.
    expect((await s.api("GET", `/v1/inboxes/${a.id}/messages?limit=1`, { key: a.apiKey })).status).toBe(200);
    expect(await first).toBe(200);
    const again = await fetch(`http://127.0.0.1:${port}/v1/inboxes/${a.id}/send`, {
      method: "POST",
      headers: { "x-api-key": a.apiKey, "content-type": "application/json" },
      body,
    });
    expect(again.status).toBe(200);
  });
  it("a greylisted recipient is tried again later, and the others of the message are not sent twice", async () => {
    relay.greylist.add("grey@example.org");
    const r = await s.api("POST", `/v1/inboxes/${a.id}/send`, {
      key: a.apiKey,
      body: { to: ["grey@example.org", "glad@example.org"], subject: "greylisted", plainBody: "x", verified: true },
    });
    expect(r.status).toBe(200);
    const status = async () => (await s.api("GET", `/v1/inboxes/${a.id}/messages/${r.body.id}`, { key: a.apiKey })).body.status;
    await waitFor(async () => relay.received.some((m) => m.to.includes("grey@example.org")), {
      timeoutMs: 15_000,
      what: "the greylisted recipient's second try",
    });
    await waitFor(async () => (await status()) === "delivered", { timeoutMs: 5_000, what: "delivered" });
    const copies = (who: string) => relay.received.filter((m) => m.raw.includes("greylisted") && m.to.includes(who)).length;
    expect(relay.rcptTries.get("grey@example.org")).toBe(2);
    expect([copies("grey@example.org"), copies("glad@example.org")]).toEqual([1, 1]);
  });
  it("a copy for an inbox of the sender's own tenant is filed in the transaction that records the delivery; another tenant's apart", async () => {
    const lastEvent = (tenantId: string, workspaceId: string, type: string) =>
      s.iso.jetstream(async (jsm) => {
        const m = await jsm.streams.getMessage(eventsStreamName(s.iso.prefix), {
          last_by_subj: `${s.iso.prefix}evt.mailbox.${tenantId}.${workspaceId}.${type}`,
        });
        if (!m) throw new Error(`no ${type} event in the stream`);
        return m.json<{ id: string; causationId: string | null; data: { messageId: string } }>();
      });
    const own = (await s.api("POST", "/v1/inboxes", { key: alpha.key, body: { username: "alice-desk", workspaceId: alpha.workspaceId } })).body;
    const sent = await s.api("POST", `/v1/inboxes/${a.id}/send`, {
      key: a.apiKey,
      body: { to: own.email, subject: "Same tenant", plainBody: "x", verified: true },
    });
    expect(sent.status).toBe(200);
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${a.id}/messages/${sent.body.id}`, { key: a.apiKey })).body.status === "delivered", {
      timeoutMs: 10_000,
      what: "delivered",
    });
    await waitForCount(own, 1);
    // One command made both: the record's cause is the copy's event.
    const delivered = await waitFor(async () => (await lastEvent(alpha.tenantId, alpha.workspaceId, "MessageDelivered")).data.messageId === sent.body.id, {
      timeoutMs: 5_000,
      what: "the MessageDelivered event in the stream",
    }).then(() => lastEvent(alpha.tenantId, alpha.workspaceId, "MessageDelivered"));
    const copy = await lastEvent(alpha.tenantId, alpha.workspaceId, "MessageReceived");
    expect(delivered.causationId).toBe(copy.id);

    // To another tenant: the copy is that tenant's transaction, the record the sender's own.
    const across = await s.api("POST", `/v1/inboxes/${a.id}/send`, {
      key: a.apiKey,
      body: { to: b.email, subject: "Other tenant", plainBody: "y", verified: true },
    });
    expect(across.status).toBe(200);
    await waitFor(async () => (await lastEvent(alpha.tenantId, alpha.workspaceId, "MessageDelivered")).data.messageId === across.body.id, {
      timeoutMs: 10_000,
      what: "the other tenant's delivery recorded",
    });
    expect((await lastEvent(alpha.tenantId, alpha.workspaceId, "MessageDelivered")).causationId).toBeNull();
  });
});
