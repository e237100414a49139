import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect, delay, nanos, type NatsConnection } from "@nats-io/transport-node";
import { consumerCaughtUp, streamEnd } from "@mam/bus/consumer.ts";
import { contextEventsFilter } from "@mam/contracts/envelope.ts";
import { MAILBOX_CONTEXT } from "@mam/contracts/mailbox-events.ts";
import { FeedEvent, feedFilterOf, feedStreamName } from "@mam/contracts/realtime-feed.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { FEED_DURABLE } from "@mam/realtime/feed/renderer.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/** One replica renders (the lease's holder), the other stands by: each event is rendered once. */
describe("the feed with two realtime replicas", () => {
  let s: Stack;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;

  const total = async (stream: string, filter: string) =>
    Object.values((await jsm.streams.info(stream, { subjects_filter: filter })).state.subjects ?? {}).reduce((n, c) => n + c, 0);

  beforeAll(async () => {
    s = new Stack({ logLevel: "warn", realtime: 2 });
    await s.start();
    nc = await connect({ servers: s.iso.urls.NATS_URL });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await s?.stop();
  });

  it("renders every event of a burst once, by the replica holding the lease", async () => {
    const EVENTS = eventsStreamName(s.iso.prefix);
    const FEED = feedStreamName(s.iso.prefix);
    // One replica pulls from the consumer; the other stands by.
    expect(s.realtimes.map((r) => r.rendering()).sort()).toEqual([false, true]);
    await waitFor(async () => (await jsm.consumers.info(EVENTS, FEED_DURABLE)).num_waiting >= 1, { timeoutMs: 10_000, what: "the renderer pulling" });

    const t = await provisionTenant(s, "Replicas");
    const ws = [t.workspace.id, (await s.api("POST", "/v1/workspaces", { key: t.key.key, body: { name: "Second" } })).body.id as string];
    const inboxes: { id: string; apiKey: string; email: string }[] = [];
    for (const [i, workspaceId] of ws.entries()) {
      for (const n of [0, 1]) inboxes.push((await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: `r${i}${n}`, workspaceId } })).body);
    }
    const SENDS = 20;
    await Promise.all(
      Array.from({ length: SENDS }, async (_, i) => {
        const [from, to] = [inboxes[i % 4]!, inboxes[(i + 1) % 4]!];
        const r = await s.api("POST", `/v1/inboxes/${from.id}/send`, {
          key: from.apiKey,
          body: { to: [to.email], subject: `burst ${i}`, plainBody: `n${i}`, verified: true },
        });
        expect(r.status).toBe(200);
      }),
    );
    // Each send: message.sent, message.received (the copy), message.delivered (local).
    const filter = feedFilterOf(s.iso.prefix, { tenantId: t.tenant.id });
    await waitFor(async () => (await total(FEED, filter)) >= 3 * SENDS, { timeoutMs: 20_000, what: "the burst in the feed" });
    const mailboxEvents = contextEventsFilter(s.iso.prefix, MAILBOX_CONTEXT);
    const events = await total(EVENTS, mailboxEvents);
    await waitFor(
      async () => {
        const i = await jsm.consumers.info(EVENTS, FEED_DURABLE);
        return i.delivered.stream_seq >= (await jsm.streams.info(EVENTS)).state.last_seq && i.num_ack_pending === 0 && i.num_pending === 0;
      },
      { timeoutMs: 15_000, what: "the renderer caught up" },
    );
    // No event handed out twice: one delivery per mailbox event.
    const consumer = await jsm.consumers.info(EVENTS, FEED_DURABLE);
    expect(consumer.num_redelivered).toBe(0);
    expect(consumer.delivered.consumer_seq).toBe(events);

    const c = await js.consumers.get(FEED, { filter_subjects: filter });
    const seen: FeedEvent[] = [];
    const n = await total(FEED, filter);
    for await (const m of await c.fetch({ max_messages: n, expires: 5_000 })) {
      seen.push(FeedEvent.parse(m.json()));
      if (seen.length === n) break;
    }
    expect(seen).toHaveLength(3 * SENDS);
    expect(new Set(seen.map((e) => e.eventId)).size).toBe(3 * SENDS);
    const byType = (type: string) => seen.filter((e) => e.eventType === type).map((e) => e.message!.subject);
    const subjects = Array.from({ length: SENDS }, (_, i) => `burst ${i}`).sort();
    for (const type of ["message.sent", "message.received", "message.delivered"]) expect(byType(type).sort()).toEqual(subjects);

    // The consumer re-created (by an operator), past the feed's duplicate window: the renderer
    // skips what the feed holds, so the burst is not stored again.
    const feedConfig = (await jsm.streams.info(FEED)).config;
    await jsm.streams.update(FEED, { ...feedConfig, duplicate_window: nanos(1_000) });
    await delay(1_500);
    const held = (await jsm.streams.info(FEED)).state.messages;
    const created = consumer.created;
    await jsm.consumers.delete(EVENTS, FEED_DURABLE);
    await waitFor(async () => ((await jsm.consumers.info(EVENTS, FEED_DURABLE).catch(() => undefined))?.created ?? created) !== created, {
      timeoutMs: 15_000,
      what: "the consumer re-created",
    });
    await waitFor(async () => (await jsm.consumers.info(EVENTS, FEED_DURABLE)).num_waiting >= 1, { timeoutMs: 10_000, what: "the renderer pulling again" });
    const through = await streamEnd({ jsm }, EVENTS);
    await waitFor(() => consumerCaughtUp({ jsm }, EVENTS, FEED_DURABLE, through), { timeoutMs: 15_000, what: "the re-created consumer caught up" });
    expect((await jsm.streams.info(FEED)).state.messages).toBe(held);
    await jsm.streams.update(FEED, feedConfig);
  });
});
