import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { DELIVERY_DURABLE } from "@mam/mailbox/delivery/worker.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

type Inbox = { id: string; email: string; apiKey: string; workspaceId: string };
type Message = { id: string; threadId: string; subject: string; direction: string; status: string; messageIdHeader: string; inReplyTo: string | null };

/**
 * A send files the copies for inboxes of the sender's own workspace itself, in its own
 * transaction, with the record of their delivery (fb8ad56, e661dbe); the delivery worker
 * then finds those recipients settled and delivers only the rest: another workspace's
 * inbox, and the world through the relay. Through HTTP, with the mailbox's tables and the
 * event stream read to count what was made.
 */
describe("a send files its own workspace's copies", () => {
  const relay = new SmtpSink();
  let s: Stack;
  let tenantId: string;
  let tenantKey: string;
  let a: Inbox;
  let b: Inbox;
  /** Another workspace of the same tenant. */
  let c: Inbox;

  const db = () => s.mailbox!.ctx.db;
  const stream = () => eventsStreamName(s.iso.prefix);
  const message = async (i: Inbox, id: string) => (await s.api("GET", `/v1/inboxes/${i.id}/messages/${id}`, { key: i.apiKey })).body;
  const inbound = async (i: Inbox) =>
    (await s.api("GET", `/v1/inboxes/${i.id}/messages?direction=inbound&limit=100`, { key: i.apiKey })).body.messages as Message[];
  const send = (from: Inbox, body: Record<string, unknown>, headers?: Record<string, string>) =>
    s.api("POST", `/v1/inboxes/${from.id}/send`, { key: from.apiKey, body: { plainBody: "x", verified: true, ...body }, headers });

  const inboxOf = async (username: string, workspaceId?: string) => {
    const r = await s.api("POST", "/v1/inboxes", { key: tenantKey, body: { username, workspaceId } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body as Inbox;
  };

  /** Every copy of a sent message, in any inbox of any workspace (deleted ones too), from the table. */
  const copiesOf = (sentId: string) =>
    db()
      .selectFrom("messages")
      .select(["workspace_id", "inbox_id", "message_id", "direction", "status", "subject"])
      .where("source_message_id", "=", sentId)
      .execute();
  const outcomesOf = (i: Inbox, sentId: string) =>
    db()
      .selectFrom("delivery_outcomes")
      .select(["recipient", "outcome"])
      .where("workspace_id", "=", i.workspaceId)
      .where("message_id", "=", sentId)
      .orderBy("recipient")
      .execute();
  const relayedTo = (subject: string) => relay.received.filter((m) => m.raw.toString().includes(`Subject: ${subject}`)).map((m) => m.to);

  /** Events of one type in a workspace of the tenant, as the stream holds them. */
  const eventCount = (workspaceId: string, type: string) =>
    s.iso.jetstream(async (jsm) => {
      const subject = `${s.iso.prefix}evt.mailbox.${tenantId}.${workspaceId}.${type}`;
      const info = await jsm.streams.info(stream(), { subjects_filter: subject });
      return info.state.subjects?.[subject] ?? 0;
    });

  /**
   * The delivery worker has handled this sent message's event and has nothing else in hand:
   * the event is in the stream, acknowledged, and no other is waiting or unacknowledged.
   */
  const workerDoneWith = async (from: Inbox, sentId: string) => {
    await waitFor(
      () =>
        s.iso.jetstream(async (jsm) => {
          const last = await jsm.streams
            .getMessage(stream(), { last_by_subj: `${s.iso.prefix}evt.mailbox.${tenantId}.${from.workspaceId}.MessageSent` })
            .catch(() => null);
          if (!last || last.json<{ data: { messageId: string } }>().data.messageId !== sentId) return false;
          const consumer = await jsm.consumers.info(stream(), DELIVERY_DURABLE);
          return consumer.ack_floor.stream_seq >= last.seq && consumer.num_pending === 0 && consumer.num_ack_pending === 0;
        }),
      { timeoutMs: 10_000, intervalMs: 50, what: `the delivery worker done with ${sentId}` },
    );
  };

  /** Sent messages the worker acknowledged as settled at send (observed, still done by the real set). */
  const settledTaken: string[] = [];

  beforeAll(async () => {
    const relayUrl = await relay.start();
    s = new Stack({ logLevel: "warn", mailboxEnv: { SMTP_RELAY_URL: relayUrl } });
    await s.start();
    const settled = s.mailbox!.ctx.settledAtSend;
    const take = settled.take.bind(settled);
    vi.spyOn(settled, "take").mockImplementation((id) => {
      const was = take(id);
      if (was && id) settledTaken.push(id);
      return was;
    });
    const t = await provisionTenant(s, "Local copies");
    tenantId = t.tenant.id;
    tenantKey = t.key.key;
    const w2 = await s.api("POST", "/v1/workspaces", { key: t.key.key, body: { name: "Second" } });
    expect(w2.status, JSON.stringify(w2.body)).toBe(201);
    a = await inboxOf("local-a");
    b = await inboxOf("local-b");
    c = await inboxOf("local-c", w2.body.id);
    expect(b.workspaceId).toBe(a.workspaceId);
    expect(c.workspaceId).not.toBe(a.workspaceId);
  });
  afterAll(async () => {
    await s?.stop();
    await relay.stop();
  });

  it("to an inbox of the same workspace: one copy, filed with the send, delivered, and the worker files no second", async () => {
    const [receivedBefore, deliveredBefore] = [await eventCount(a.workspaceId, "MessageReceived"), await eventCount(a.workspaceId, "MessageDelivered")];
    const r = await send(a, { to: b.email, subject: "Same workspace" });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const sentId = r.body.id as string;

    // Filed in the send's transaction: there as soon as the send is answered, with its record.
    const copies = await copiesOf(sentId);
    expect(copies).toEqual([
      { workspace_id: a.workspaceId, inbox_id: b.id, message_id: expect.any(String), direction: "inbound", status: "received", subject: "Same workspace" },
    ]);
    expect(await outcomesOf(a, sentId)).toEqual([{ recipient: b.email.toLowerCase(), outcome: "delivered" }]);
    const sent = await message(a, sentId);
    expect(sent).toMatchObject({ status: "delivered", deliveries: [{ recipient: b.email.toLowerCase(), status: "delivered" }] });
    const got = (await inbound(b)).filter((m) => m.subject === "Same workspace");
    expect(got).toEqual([expect.objectContaining({ id: copies[0]!.message_id, direction: "inbound", status: "received" })]);

    // The worker meets the event, knows B was settled by the send it committed (it reads
    // nothing back), and files nothing more.
    await workerDoneWith(a, sentId);
    expect(settledTaken).toContain(sentId);
    await sleep(500);
    expect(await copiesOf(sentId)).toHaveLength(1);
    expect(await outcomesOf(a, sentId)).toHaveLength(1);
    expect((await inbound(b)).filter((m) => m.subject === "Same workspace")).toHaveLength(1);
    expect(await eventCount(a.workspaceId, "MessageReceived")).toBe(receivedBefore + 1);
    expect(await eventCount(a.workspaceId, "MessageDelivered")).toBe(deliveredBefore + 1);
    expect(relayedTo("Same workspace")).toEqual([]);
  });

  it("to the same workspace, another workspace of the tenant and the world: one copy each, the relay only for the outsider", async () => {
    const outsider = "partner@example.com";
    const r = await send(a, { to: [b.email, c.email], cc: outsider, subject: "Three ways" });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const sentId = r.body.id as string;
    // B's copy came with the send (C's and the outsider's are the worker's, which may have filed C's already).
    expect((await copiesOf(sentId)).map((m) => m.inbox_id)).toContain(b.id);

    await waitFor(async () => (await message(a, sentId)).status === "delivered", { timeoutMs: 10_000, what: "every recipient delivered" });
    await workerDoneWith(a, sentId);
    await sleep(300);
    const copies = await copiesOf(sentId);
    expect(copies.map((m) => [m.workspace_id, m.inbox_id]).sort()).toEqual(
      [
        [a.workspaceId, b.id],
        [c.workspaceId, c.id],
      ].sort(),
    );
    expect(copies.every((m) => m.direction === "inbound" && m.subject === "Three ways")).toBe(true);
    expect((await inbound(b)).filter((m) => m.subject === "Three ways")).toHaveLength(1);
    expect((await inbound(c)).filter((m) => m.subject === "Three ways")).toHaveLength(1);
    expect(relayedTo("Three ways")).toEqual([[outsider]]);
    // Only B was settled at send: the worker read the message and delivered the rest.
    expect(settledTaken).not.toContain(sentId);
    const recipients = [b.email, c.email, outsider].map((x) => x.toLowerCase()).sort();
    expect(await outcomesOf(a, sentId)).toEqual(recipients.map((recipient) => ({ recipient, outcome: "delivered" })));
    const sent = await message(a, sentId);
    expect((sent.deliveries as { recipient: string; status: string }[]).map((d) => [d.recipient, d.status]).sort()).toEqual(
      recipients.map((x) => [x, "delivered"]),
    );
  });

  it("B's reply to its copy lands once in A's inbox, in the thread of A's sent message", async () => {
    const r = await send(a, { to: b.email, subject: "Question" });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const original = await message(a, r.body.id);
    const copy = (await inbound(b)).find((m) => m.subject === "Question")!;
    expect(copy).toBeDefined();

    const reply = await s.api("POST", `/v1/inboxes/${b.id}/reply/${copy.id}`, { key: b.apiKey, body: { plainBody: "Answer" } });
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    expect(reply.body.threadId).toBe(copy.threadId);
    // Filed with the reply's send: there at once, threaded by its In-Reply-To.
    const answers = (await inbound(a)).filter((m) => m.subject === "Re: Question");
    expect(answers).toEqual([expect.objectContaining({ threadId: original.threadId, inReplyTo: original.messageIdHeader })]);
    expect(await copiesOf(reply.body.id)).toEqual([expect.objectContaining({ inbox_id: a.id, message_id: answers[0]!.id })]);
    expect(await message(b, reply.body.id)).toMatchObject({ status: "delivered" });

    await workerDoneWith(b, reply.body.id);
    await sleep(300);
    expect((await inbound(a)).filter((m) => m.subject === "Re: Question")).toHaveLength(1);
    expect(await copiesOf(reply.body.id)).toHaveLength(1);
    const thread = (await s.api("GET", `/v1/inboxes/${a.id}/threads/${original.threadId}`, { key: a.apiKey })).body;
    expect(thread.messages.map((m: Message) => [m.direction, m.subject])).toEqual([
      ["outbound", "Question"],
      ["inbound", "Re: Question"],
    ]);
  });

  it("to the address of a deleted inbox of the same workspace: no copy anywhere, the send answered, the address bounced (MAIL_DOMAIN has no mail elsewhere)", async () => {
    const gone = await inboxOf("local-gone");
    expect(gone.workspaceId).toBe(a.workspaceId);
    expect((await s.api("DELETE", `/v1/inboxes/${gone.id}`, { key: tenantKey })).status).toBe(200);
    // Its address is released with it: no inbox of the platform claims it any more.
    expect(await db().selectFrom("address_claims").select("inbox_id").where("address", "=", gone.email.toLowerCase()).execute()).toEqual([]);

    const r = await send(a, { to: gone.email, subject: "Nobody home" });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ status: "sent" });
    // Not local: nothing filed with the send, the message waits for the worker.
    expect(await copiesOf(r.body.id)).toEqual([]);
    await workerDoneWith(a, r.body.id);
    await sleep(300);
    expect(await copiesOf(r.body.id)).toEqual([]);
    expect(await db().selectFrom("messages").select("message_id").where("inbox_id", "=", gone.id).execute()).toEqual([]);
    // Not sent out to come back: the platform's own domain has no mail anywhere else.
    expect(relayedTo("Nobody home")).toEqual([]);
    expect(await outcomesOf(a, r.body.id)).toEqual([{ recipient: gone.email.toLowerCase(), outcome: "bounced" }]);
    expect(await message(a, r.body.id)).toMatchObject({ status: "bounced" });
  });

  it("a draft sent to the same workspace: its copy filed with the send, once", async () => {
    const d = await s.api("POST", `/v1/inboxes/${a.id}/drafts`, {
      key: a.apiKey,
      body: { to: b.email, subject: "Drafted", plainBody: "from a draft", verified: true },
    });
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    const r = await s.api("POST", `/v1/inboxes/${a.id}/drafts/${d.body.id}/send`, { key: a.apiKey });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(await copiesOf(r.body.id)).toEqual([expect.objectContaining({ inbox_id: b.id, subject: "Drafted" })]);
    expect(await message(a, r.body.id)).toMatchObject({ status: "delivered" });
    await workerDoneWith(a, r.body.id);
    await sleep(300);
    expect(await copiesOf(r.body.id)).toHaveLength(1);
    expect((await inbound(b)).filter((m) => m.subject === "Drafted")).toHaveLength(1);
    expect(await outcomesOf(a, r.body.id)).toEqual([{ recipient: b.email.toLowerCase(), outcome: "delivered" }]);
  });

  it("one Idempotency-Key sent twice to the same workspace: one message, one copy, the same answer", async () => {
    const body = { to: b.email, subject: "Once only" };
    const first = await send(a, body, { "idempotency-key": "local-once" });
    const second = await send(a, body, { "idempotency-key": "local-once" });
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(second.body).toEqual(first.body);
    // The first filed the copy with it; the second, answered from the key's record, filed none.
    expect(await copiesOf(first.body.id)).toEqual([expect.objectContaining({ inbox_id: b.id, subject: "Once only" })]);
    // Copies of one request at the same moment (one group-committed batch, or two): still one.
    const together = await Promise.all([1, 2, 3].map(() => send(a, { ...body, subject: "Once together" }, { "idempotency-key": "local-together" })));
    expect(together.map((x) => x.status)).toEqual([200, 200, 200]);
    for (const x of together) expect(x.body).toEqual(together[0]!.body);

    // The last one sent: the worker is done with the first too.
    await workerDoneWith(a, together[0]!.body.id);
    await sleep(300);
    for (const [answer, subject] of [
      [first, "Once only"],
      [together[0]!, "Once together"],
    ] as const) {
      const outbound = (await s.api("GET", `/v1/inboxes/${a.id}/messages?direction=outbound&limit=100`, { key: a.apiKey })).body.messages as Message[];
      expect(outbound.filter((m) => m.subject === subject).map((m) => m.id)).toEqual([answer.body.id]);
      expect(await copiesOf(answer.body.id)).toHaveLength(1);
      expect((await inbound(b)).filter((m) => m.subject === subject)).toHaveLength(1);
      expect(await outcomesOf(a, answer.body.id)).toEqual([{ recipient: b.email.toLowerCase(), outcome: "delivered" }]);
    }
  });
});
