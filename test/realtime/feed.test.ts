import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AckPolicy, DeliverPolicy, jetstream, type JetStreamClient, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect, delay, nanos, type NatsConnection } from "@nats-io/transport-node";
import { INLINE_BYTES } from "@mam/bus/spill.ts";
import { call } from "@mam/bus/rpc-client.ts";
import { contextEventsFilter, eventSubject, EventEnvelope } from "@mam/contracts/envelope.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { MAILBOX_CONTEXT } from "@mam/contracts/mailbox-events.ts";
import { FEED_BODY_MAX_BYTES, FeedEvent, feedFilterOf, feedStreamName, feedSubject, publicEventId } from "@mam/contracts/realtime-feed.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { FEED_DURABLE } from "@mam/realtime/feed/renderer.ts";
import { applyDomainFact } from "@mam/realtime/feed/verified-domains.ts";
import { uuidv7 } from "@mam/runtime/ids.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { TestDnsServer } from "@mam/testing/dns-server.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

type Rec = { purpose: string; name: string; value: string; priority: number | null; type: string };

/**
 * The feed realtime renders from the mailbox's events, read from its stream as any consumer
 * would: mail over SMTP and sends over HTTP become entries with their bodies, thread and
 * scope; each event once, however often it is delivered; long bodies cut; domain.verified
 * on each transition only.
 */
describe("the public feed", () => {
  const dns = new TestDnsServer();
  let s: Stack;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let tenantId: string;
  let workspaceId: string;
  let tk: string;
  let a: { id: string; apiKey: string; email: string };
  let b: { id: string; apiKey: string; email: string };
  let FEED: string;
  let EVENTS: string;

  const smtp = () => nodemailer.createTransport({ host: "127.0.0.1", port: s.smtp!.port, secure: false, ignoreTLS: true });

  /** How many entries the feed holds under a filter. */
  const count = async (filter: string) => {
    const info = await jsm.streams.info(FEED, { subjects_filter: filter });
    return Object.values(info.state.subjects ?? {}).reduce((n, c) => n + c, 0);
  };
  /** Every entry under a filter, once at least `atLeast` are there, with the subject and Nats-Msg-Id each was stored under. */
  const entries = async (filter: string, atLeast = 1) => {
    await waitFor(async () => (await count(filter)) >= atLeast, { timeoutMs: 15_000, what: `${atLeast} feed entries under ${filter}` });
    const n = await count(filter);
    const c = await js.consumers.get(FEED, { filter_subjects: filter });
    const out: { seq: number; subject: string; msgId: string | undefined; sourceSeq: string | undefined; e: FeedEvent }[] = [];
    for await (const m of await c.fetch({ max_messages: n, expires: 5_000 })) {
      const h = m.headers;
      out.push({ seq: m.seq, subject: m.subject, msgId: h?.get("Nats-Msg-Id"), sourceSeq: h?.get("Mam-Event-Seq"), e: FeedEvent.parse(m.json()) });
      if (out.length === n) break;
    }
    return out;
  };
  /** The first entry under a filter that `pred` accepts, once there is one. */
  const entryWhere = async (filter: string, pred: (e: FeedEvent) => boolean) => {
    let found: FeedEvent | undefined;
    await waitFor(async () => !!(found = (await count(filter)) ? (await entries(filter)).map((x) => x.e).find(pred) : undefined), {
      timeoutMs: 15_000,
      what: `a feed entry under ${filter}`,
    });
    return found!;
  };
  /** The renderer has taken and settled every event stored so far. */
  const rendererCaughtUp = async () => {
    const last = (await jsm.streams.info(EVENTS)).state.last_seq;
    await waitFor(
      async () => {
        const i = await jsm.consumers.info(EVENTS, FEED_DURABLE).catch(() => undefined);
        return !!i && i.delivered.stream_seq >= last && i.num_ack_pending === 0 && i.num_pending === 0;
      },
      { timeoutMs: 15_000, what: "the renderer to catch up" },
    );
  };
  /** The domain events of one type in this workspace, from the event stream. */
  const domainEvents = async (type: string) => {
    const subject = eventSubject(s.iso.prefix, { context: MAILBOX_CONTEXT, tenantId, workspaceId, type });
    const c = await js.consumers.get(EVENTS, { filter_subjects: subject });
    const info = await jsm.streams.info(EVENTS, { subjects_filter: subject });
    const n = info.state.subjects?.[subject] ?? 0;
    const out: EventEnvelope[] = [];
    if (!n) return out;
    for await (const m of await c.fetch({ max_messages: n, expires: 5_000 })) {
      out.push(EventEnvelope.parse(m.json()) as EventEnvelope);
      if (out.length === n) break;
    }
    return out;
  };

  beforeAll(async () => {
    const dnsServer = await dns.start();
    s = new Stack({ logLevel: "warn", smtp: true, realtime: 1, mailboxEnv: { DNS_SERVERS: dnsServer } });
    await s.start();
    nc = await connect({ servers: s.iso.urls.NATS_URL });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
    FEED = feedStreamName(s.iso.prefix);
    EVENTS = eventsStreamName(s.iso.prefix);
    const t = await provisionTenant(s, "Feed");
    tenantId = t.tenant.id;
    workspaceId = t.workspace.id;
    tk = t.key.key;
    a = (await s.api("POST", "/v1/inboxes", { key: tk, body: { username: "feed-a", displayName: "Agent A" } })).body;
    b = (await s.api("POST", "/v1/inboxes", { key: tk, body: { username: "feed-b" } })).body;
    // The directory of smtp-ingress learns the new addresses from the events.
    await waitFor(
      () =>
        smtp()
          .verify()
          .then(() => true),
      { timeoutMs: 5_000 },
    );
  });
  afterAll(async () => {
    await nc?.close();
    await s?.stop();
    await dns.stop();
  });

  it("mail over SMTP becomes one message.received entry: bodies, thread, ids, scope subject", async () => {
    const send = () =>
      smtp().sendMail({
        from: '"Sender Person" <sender@example.com>',
        to: a.email,
        subject: "Hello feed",
        text: "plain body ✓",
        html: "<p>html body ✓</p>",
      });
    await waitFor(
      () =>
        send().then(
          () => true,
          () => false,
        ),
      { timeoutMs: 10_000, what: "the directory to know the inbox" },
    );
    const [got, ...more] = await entries(feedFilterOf(s.iso.prefix, { tenantId, workspaceId, inboxId: a.id }));
    expect(more).toEqual([]);
    const e = got!.e;
    const listed = (await s.api("GET", `/v1/inboxes/${a.id}/messages`, { key: a.apiKey })).body.messages;
    expect(listed).toHaveLength(1);
    expect(e).toMatchObject({ eventType: "message.received", tenantId, workspaceId, inboxId: a.id });
    expect(e.message).toMatchObject({
      messageId: listed[0].id,
      inboxId: a.id,
      threadId: listed[0].threadId,
      direction: "inbound",
      from: '"Sender Person" <sender@example.com>',
      fromAddress: "sender@example.com",
      to: [a.email],
      subject: "Hello feed",
      bodyTruncated: false,
      inReplyTo: null,
    });
    expect(e.message!.plainBody!.trim()).toBe("plain body ✓");
    expect(e.message!.htmlBody).toContain("<p>html body ✓</p>");
    expect(e.thread).toEqual({ threadId: listed[0].threadId, subject: "Hello feed" });
    // Stored under its scope, deduplicated by its id, which is the domain event's.
    expect(got!.subject).toBe(feedSubject(s.iso.prefix, e));
    expect(got!.subject).toBe(`${s.iso.prefix}rt.${tenantId}.${workspaceId}.${a.id}.message.received`);
    expect(got!.msgId).toBe(e.eventId);
    const [received] = await domainEvents("MessageReceived");
    expect(e.eventId).toBe(publicEventId(received!.id, received!.occurredAt));
    expect(e.occurredAt).toBe(received!.occurredAt);
  });

  it("a send over HTTP to another inbox: message.sent, message.received and message.delivered, with the thread's subject", async () => {
    const sent = await s.api("POST", `/v1/inboxes/${b.id}/send`, {
      key: b.apiKey,
      body: { to: [a.email], subject: "Plans", plainBody: "first draft", verified: true },
    });
    expect(sent.status).toBe(200);
    // B's inbox: its message sent, and (filed under the same inbox) its delivery.
    const ofB = await entries(feedFilterOf(s.iso.prefix, { tenantId, workspaceId, inboxId: b.id }), 2);
    expect(ofB.map((x) => x.e.eventType).sort()).toEqual(["message.delivered", "message.sent"]);
    const sentEntry = ofB.find((x) => x.e.eventType === "message.sent")!;
    expect(sentEntry.e.message).toMatchObject({ messageId: sent.body.id, direction: "outbound", plainBody: "first draft", to: [a.email] });
    // The delivery is about B's message; the copy A received is A's own.
    const delivered = (await entries(`${s.iso.prefix}rt.${tenantId}.${workspaceId}.*.message.delivered`)).map((x) => x.e);
    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toMatchObject({ inboxId: b.id, delivery: { recipients: [a.email], via: "local" }, message: { messageId: sent.body.id } });
    const copy = await entryWhere(feedFilterOf(s.iso.prefix, { tenantId, workspaceId, inboxId: a.id }), (x) => x.message?.subject === "Plans");
    expect(copy).toMatchObject({ eventType: "message.received", message: { direction: "inbound", plainBody: "first draft", fromAddress: b.email } });

    // A reply keeps the thread: its subject is the thread's, not the reply's.
    const reply = await s.api("POST", `/v1/inboxes/${a.id}/reply/${copy.message!.messageId}`, { key: a.apiKey, body: { plainBody: "looks good" } });
    expect(reply.status).toBe(200);
    const back = await entryWhere(feedFilterOf(s.iso.prefix, { tenantId, workspaceId, inboxId: b.id }), (x) => x.eventType === "message.received");
    expect(back.message).toMatchObject({ subject: "Re: Plans", plainBody: "looks good", threadId: sentEntry.e.message!.threadId });
    expect(back.thread).toEqual({ threadId: sentEntry.e.message!.threadId, subject: "Plans" });
  });

  it("a body over the cap is cut at a character boundary and flagged", async () => {
    // One ASCII byte, then two-byte characters: the cap falls inside one, which is left out whole.
    const text = `a${"é".repeat(150_000)}`;
    await smtp().sendMail({ from: "long@example.com", to: b.email, subject: "Long", text });
    const long = await entryWhere(feedFilterOf(s.iso.prefix, { tenantId, workspaceId, inboxId: b.id }), (x) => x.message?.subject === "Long");
    expect(long.message!.bodyTruncated).toBe(true);
    expect(Buffer.byteLength(long.message!.plainBody!)).toBe(FEED_BODY_MAX_BYTES - 1);
    expect(long.message!.plainBody).toBe(`a${"é".repeat((FEED_BODY_MAX_BYTES - 2) / 2)}`);
    // The message itself is whole.
    const full = await s.api("GET", `/v1/inboxes/${b.id}/messages/${long.message!.messageId}`, { key: b.apiKey });
    expect(full.body.plainBody.trim()).toBe(text);
  });

  it("the mailbox's feed.messages answers the asked workspace's messages only, cut, however large the answer", async () => {
    // Two bodies past the cap each: two such messages make an answer too large for one NATS message.
    const body = "z".repeat(FEED_BODY_MAX_BYTES + 10);
    for (const subject of ["Big 1", "Big 2"]) await smtp().sendMail({ from: "big@example.com", to: b.email, subject, text: body, html: `<p>${body}</p>` });
    const big = await Promise.all(
      ["Big 1", "Big 2"].map((subject) =>
        entryWhere(feedFilterOf(s.iso.prefix, { tenantId, workspaceId, inboxId: b.id }), (x) => x.message?.subject === subject),
      ),
    );
    // A message of another tenant's workspace, asked for under this workspace, is not there.
    const other = await provisionTenant(s, "Other");
    const stranger = (await s.api("POST", "/v1/inboxes", { key: other.key.key, body: { username: "stranger" } })).body;
    await smtp().sendMail({ from: "x@example.com", to: stranger.email, subject: "Elsewhere", text: "not yours" });
    const elsewhere = await entryWhere(feedFilterOf(s.iso.prefix, { tenantId: other.tenant.id }), () => true);

    const ids = [...big.map((e) => e.message!.messageId), elsewhere.message!.messageId, uuidv7()];
    const r = await call(s.realtimes[0]!.ctx.bus, RpcContracts.mailbox.feedMessages, { tenantId, workspaceId, messageIds: ids });
    if (!r.ok) throw new Error(r.error.error);
    expect(Buffer.byteLength(JSON.stringify(r.body))).toBeGreaterThan(INLINE_BYTES);
    expect(r.body.messages.map((m) => m.message.subject).sort()).toEqual(["Big 1", "Big 2"]);
    for (const { message } of r.body.messages) {
      expect(message).toMatchObject({
        bodyTruncated: true,
        plainBody: body.slice(0, FEED_BODY_MAX_BYTES),
        htmlBody: `<p>${body}`.slice(0, FEED_BODY_MAX_BYTES),
      });
    }
    // Asked under its own workspace, it is; under its workspace but another tenant (an event
    // claiming a tenant the workspace is not of), it is not: its entry would be filed there.
    const own = await call(s.realtimes[0]!.ctx.bus, RpcContracts.mailbox.feedMessages, {
      tenantId: other.tenant.id,
      workspaceId: other.workspace.id,
      messageIds: ids,
    });
    expect(own.ok && own.body.messages.map((m) => m.message.subject)).toEqual(["Elsewhere"]);
    const misfiled = await call(s.realtimes[0]!.ctx.bus, RpcContracts.mailbox.feedMessages, { tenantId, workspaceId: other.workspace.id, messageIds: ids });
    expect(misfiled.ok && misfiled.body.messages).toEqual([]);
  });

  it("an event delivered again (its consumer re-created by an operator) adds no entry, past the duplicate window too; one the feed lacks is rendered", async () => {
    await rendererCaughtUp();
    const filter = feedFilterOf(s.iso.prefix, { tenantId });
    const before = await entries(filter);
    expect(before.length).toBeGreaterThanOrEqual(6);
    // Every entry says which event it was rendered from.
    for (const x of before) expect(Number(x.sourceSeq)).toBeGreaterThan(0);
    // The stream's duplicate window no longer covers them (it is two minutes; a consumer is
    // often re-created much later): only the renderer itself can keep from storing them twice.
    const feedConfig = (await jsm.streams.info(FEED)).config;
    await jsm.streams.update(FEED, { ...feedConfig, duplicate_window: nanos(1_000) });
    await delay(1_500);
    // One entry lost, as if its event had been in flight when the consumer went.
    const lost = before.at(-2)!;
    await jsm.streams.deleteMessage(FEED, lost.seq);

    const consumerBefore = await jsm.consumers.info(EVENTS, FEED_DURABLE);
    await jsm.consumers.delete(EVENTS, FEED_DURABLE);
    await waitFor(async () => !!(await jsm.consumers.info(EVENTS, FEED_DURABLE).catch(() => undefined)), {
      timeoutMs: 15_000,
      what: "the consumer re-created",
    });
    await rendererCaughtUp();
    const again = await jsm.consumers.info(EVENTS, FEED_DURABLE);
    expect(again.created).not.toBe(consumerBefore.created);
    await waitFor(async () => (await count(filter)) >= before.length, { timeoutMs: 15_000, what: "the lost entry rendered again" });
    const after = (await entries(filter)).map((x) => x.e.eventId);
    expect(new Set(after).size).toBe(after.length);
    expect(after.sort()).toEqual(before.map((x) => x.e.eventId).sort());
    await jsm.streams.update(FEED, feedConfig);
  });

  it("events delivered again past the duplicate window (a consumer an operator declared by hand, from the start) add no entry", async () => {
    await rendererCaughtUp();
    const filter = feedFilterOf(s.iso.prefix, { tenantId });
    const before = (await entries(filter)).map((x) => x.e.eventId).sort();
    const feedConfig = (await jsm.streams.info(FEED)).config;
    await jsm.streams.update(FEED, { ...feedConfig, duplicate_window: nanos(1_000) });
    // No replica runs while the operator declares the consumer again, to read the whole stream.
    const [replica] = s.realtimes.splice(0, 1);
    await replica!.destroy();
    await jsm.consumers.delete(EVENTS, FEED_DURABLE);
    await jsm.consumers.add(EVENTS, {
      durable_name: FEED_DURABLE,
      filter_subject: contextEventsFilter(s.iso.prefix, MAILBOX_CONTEXT),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
    });
    await delay(1_500);
    await s.startRealtime();
    await rendererCaughtUp();
    expect((await jsm.consumers.info(EVENTS, FEED_DURABLE)).delivered.consumer_seq).toBeGreaterThanOrEqual(before.length);
    expect((await entries(filter)).map((x) => x.e.eventId).sort()).toEqual(before);
    await jsm.streams.update(FEED, feedConfig);
  });

  it("domain.verified fires once per transition to verified", async () => {
    const d = (await s.api("POST", "/v1/domains", { key: tk, body: { domain: "feed.example" } })).body;
    const records = d.dnsRecords as Rec[];
    const publish = (purposes: string[]) => {
      const zones = new Map<string, { MX: { exchange: string; priority: number }[]; TXT: string[] }>();
      for (const r of records.filter((x) => purposes.includes(x.purpose))) {
        const z = zones.get(r.name) ?? { MX: [], TXT: [] };
        if (r.type === "MX") z.MX.push({ exchange: r.value, priority: r.priority ?? 10 });
        else z.TXT.push(r.value);
        zones.set(r.name, z);
      }
      for (const [name, z] of zones) dns.set(name, z);
    };
    const verify = async () => (await s.api("POST", `/v1/domains/${d.id}/verify`, { key: tk })).body.status;
    publish(["mx", "spf", "dkim"]);
    expect(await verify()).toBe("verified");
    // Still verified (its DMARC record appeared): a DomainChecked, but no transition.
    publish(["dmarc"]);
    expect(await verify()).toBe("verified");
    // Its DKIM record lapses, then comes back: a second transition.
    dns.set(records.find((r) => r.purpose === "dkim")!.name, { TXT: ["v=DKIM1; k=rsa; p=AAAA"] });
    expect(await verify()).toBe("pending");
    publish(["dkim"]);
    expect(await verify()).toBe("verified");

    const checks = await domainEvents("DomainChecked");
    expect(checks.map((c) => (c.data as { status: string }).status)).toEqual(["verified", "verified", "pending", "verified"]);
    const filter = `${s.iso.prefix}rt.${tenantId}.${workspaceId}._.domain.verified`;
    await entries(filter, 2);
    await rendererCaughtUp();
    const announced = await entries(filter);
    expect(announced.map((x) => x.e.eventId)).toEqual([publicEventId(checks[0]!.id), publicEventId(checks[3]!.id)]);
    expect(announced[0]!.e).toMatchObject({ eventType: "domain.verified", inboxId: null, domain: { domainId: d.id, domain: "feed.example" } });
    expect(announced[0]!.e.message).toBeUndefined();
  });

  it("domain events delivered late (a retry, another replica) cannot undo newer ones: what is known follows the domain's versions", async () => {
    const domainId = uuidv7();
    const subject = eventSubject(s.iso.prefix, { context: MAILBOX_CONTEXT, tenantId, workspaceId, type: "DomainChecked" });
    const check = (version: number, status: "verified" | "pending") => {
      const id = uuidv7();
      const records = [{ type: "MX", purpose: "mx", name: "late.example", value: "mx.example", priority: 10, status: "verified" }];
      const e = {
        id,
        type: "DomainChecked",
        schemaVersion: 1,
        context: MAILBOX_CONTEXT,
        tenantId,
        workspaceId,
        aggregateId: domainId,
        aggregateVersion: version,
        occurredAt: new Date().toISOString(),
        causationId: null,
        correlationId: null,
        actor: { type: "system", id: null },
        data: { domainId, status, records },
      };
      return { id, publish: () => js.publish(subject, JSON.stringify(e), { msgID: id }) };
    };
    // Verified (v2), then verified still (v4, a record changed), and only then the pending check
    // between them (v3), late; then another check that finds it verified still (v5).
    const [v2, v3, v4, v5] = [check(2, "verified"), check(3, "pending"), check(4, "verified"), check(5, "verified")];
    for (const e of [v2, v4, v3, v5]) await e.publish();
    await rendererCaughtUp();
    // The late pending check did not make the domain look unverified: v5 is no transition.
    const announced = (await entries(`${s.iso.prefix}rt.${tenantId}.${workspaceId}._.domain.verified`)).filter((x) => x.e.domain?.domainId === domainId);
    expect(announced.map((x) => x.e.eventId)).toEqual([publicEventId(v2.id)]);
  });

  it("an event that announced a verification announces it again when rendered again after newer events of its domain (a batch tried again)", async () => {
    const db = s.realtimes[0]!.ctx.db;
    const domainId = uuidv7();
    const fact = (eventId: string, version: number, verified: boolean) =>
      applyDomainFact(db, { workspaceId, domainId, domain: "again.example", eventId, version, verified, at: new Date() });
    const [verified, removed, reverified, lateVerified] = [uuidv7(), uuidv7(), uuidv7(), uuidv7()];
    expect(await fact(verified, 1, true)).toBe(true);
    expect(await fact(removed, 2, false)).toBe(false);
    // The batch holding v1 and v2 is tried again: v1 still announces its transition.
    expect(await fact(verified, 1, true)).toBe(true);
    expect(await fact(reverified, 4, true)).toBe(true);
    expect(await fact(verified, 1, true)).toBe(true);
    // A verified check older than the row that never made a transition announces nothing.
    expect(await fact(lateVerified, 3, true)).toBe(false);
    expect(await fact(reverified, 4, true)).toBe(true);
  });

  it("skips poison once and renders a bounce of a message it cannot find without the message", async () => {
    const poisonSubject = eventSubject(s.iso.prefix, { context: MAILBOX_CONTEXT, tenantId, workspaceId, type: "MessageBounced" });
    await js.publish(poisonSubject, "{ not json", { msgID: uuidv7() });
    const id = uuidv7();
    const messageId = uuidv7();
    const bounce = {
      id,
      type: "MessageBounced",
      schemaVersion: 1,
      context: MAILBOX_CONTEXT,
      tenantId,
      workspaceId,
      aggregateId: messageId,
      aggregateVersion: 2,
      occurredAt: new Date().toISOString(),
      causationId: null,
      correlationId: null,
      actor: { type: "system", id: null },
      data: { messageId, recipients: ["gone@example.com"], reason: "550 5.1.1 no such user" },
    };
    await js.publish(poisonSubject, JSON.stringify(bounce), { msgID: id });
    const [got] = await entries(`${s.iso.prefix}rt.${tenantId}.${workspaceId}.*.message.bounced`);
    expect(got!.e).toMatchObject({
      eventId: publicEventId(id),
      eventType: "message.bounced",
      inboxId: null,
      bounce: { recipients: ["gone@example.com"], reason: "550 5.1.1 no such user" },
    });
    expect(got!.e.message).toBeUndefined();
    expect(got!.subject).toBe(`${s.iso.prefix}rt.${tenantId}.${workspaceId}._.message.bounced`);
    const refused = s.logs.entries().filter((l) => l.service === "realtime" && l.msg === "unreadable event; terminated");
    expect(refused).toHaveLength(1);
    await rendererCaughtUp();
  });
});
