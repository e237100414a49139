import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { FeedEvent, feedFilterOf, feedStreamName } from "@mam/contracts/realtime-feed.ts";
import { SOURCE_SEQ_HEADER } from "@mam/realtime/feed/catch-up.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { provisionTenant, Stack } from "../support/stack.ts";
import { openWs, subscribe } from "./ws-support.ts";

type Entry = { eventId: string; eventType: string; subject?: string; source: number };
type Frame = { type: string; event_id: string; event_type: string; message?: { subject: string } };

/**
 * The feed of one workspace with two realtime replicas, under bursts of SMTP mail: its
 * entries (and the WebSocket frames built from them) in the order of the events they were
 * rendered from, each once, also when the replica rendering is stopped in the middle of a burst.
 */
describe("the feed's order with two realtime replicas", () => {
  const s = new Stack({ logLevel: "warn", smtp: true, realtime: 2 });
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let t: Awaited<ReturnType<typeof provisionTenant>>;
  let inbox: { id: string; email: string };
  let smtp: ReturnType<typeof nodemailer.createTransport>;

  const send = (subject: string) =>
    smtp.sendMail({ from: "Ada <ada@example.org>", to: inbox.email, subject, text: `Body of ${subject}` }).then(
      () => true,
      () => false,
    );
  /** A burst: every message handed to SMTP at once. */
  const burst = async (tag: string, n: number) => {
    const sent = await Promise.all(Array.from({ length: n }, (_, i) => send(`${tag} ${i}`)));
    expect(sent.filter((ok) => !ok)).toEqual([]);
  };

  /** The workspace's feed entries, in the feed's order, each with the event-stream position it was rendered from. */
  const feed = async (): Promise<Entry[]> => {
    const stream = feedStreamName(s.iso.prefix);
    const filter = feedFilterOf(s.iso.prefix, { tenantId: t.tenant.id, workspaceId: t.workspace.id });
    const n = Object.values((await jsm.streams.info(stream, { subjects_filter: filter })).state.subjects ?? {}).reduce((x, c) => x + c, 0);
    const out: Entry[] = [];
    if (!n) return out;
    const c = await js.consumers.get(stream, { filter_subjects: filter });
    for await (const m of await c.fetch({ max_messages: n, expires: 5_000 })) {
      const e = FeedEvent.parse(m.json());
      out.push({ eventId: e.eventId, eventType: e.eventType, subject: e.message?.subject, source: Number(m.headers?.get(SOURCE_SEQ_HEADER)) });
      if (out.length === n) break;
    }
    return out;
  };
  const received = (entries: Entry[], tag: string) => entries.filter((e) => e.eventType === "message.received" && e.subject?.startsWith(`${tag} `));
  const feedHolds = (tag: string, n: number, timeoutMs = 90_000) =>
    waitFor(async () => received(await feed(), tag).length >= n, { timeoutMs, intervalMs: 250, what: `${n} messages "${tag}" in the feed` });

  /** Entries in rising event-stream order (a listing of the ones out of it), each event once, and all of a tag's subjects. */
  const expectInOrder = (entries: Entry[], tags: Record<string, number>) => {
    const outOfOrder = entries.filter((e, i) => i > 0 && !(e.source > entries[i - 1]!.source)).map((e) => `${e.subject ?? e.eventType} at ${e.source}`);
    expect(outOfOrder).toEqual([]);
    expect(new Set(entries.map((e) => e.eventId)).size).toBe(entries.length);
    for (const [tag, n] of Object.entries(tags)) {
      const want = Array.from({ length: n }, (_, i) => `${tag} ${i}`).sort();
      expect(
        received(entries, tag)
          .map((e) => e.subject)
          .sort(),
      ).toEqual(want);
    }
  };

  beforeAll(async () => {
    await s.start();
    nc = await connect({ servers: s.iso.urls.NATS_URL });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
    t = await provisionTenant(s, "Order");
    inbox = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "ordered" } })).body;
    smtp = nodemailer.createTransport({
      host: "127.0.0.1",
      port: s.smtp!.port,
      secure: false,
      ignoreTLS: true,
      pool: true,
      maxConnections: 8,
      maxMessages: Infinity,
    });
    // smtp-ingress learns of the inbox through an event.
    await waitFor(() => send("probe"), { timeoutMs: 10_000, what: "the inbox's address known to SMTP" });
  }, 120_000);
  afterAll(async () => {
    smtp?.close();
    await nc?.close();
    await s.stop();
  });

  it("renders bursts of mail into one workspace in stream order, each once, and sends the frames in that order", async () => {
    expect(s.realtimes.map((r) => r.rendering()).sort()).toEqual([false, true]);
    const c = await openWs(s, t.key.key);
    try {
      expect((await subscribe(c, { workspace_ids: [t.workspace.id] })).type).toBe("subscribed");
      const tags = { first: 100, second: 100, third: 100 };
      for (const [tag, n] of Object.entries(tags)) await burst(tag, n);
      await feedHolds("third", 100);
      await feedHolds("first", 100, 10_000);
      await feedHolds("second", 100, 10_000);
      const entries = await feed();
      expectInOrder(entries, tags);

      // The frames: the feed's entries in its order.
      const mine = (f: Frame) => f.type === "event" && /^(first|second|third) /.test(f.message?.subject ?? "");
      await waitFor(() => c.frames.filter((f) => mine(f as Frame)).length >= 300, { timeoutMs: 30_000, what: "300 frames" });
      const position = new Map(entries.map((e, i) => [e.eventId, i]));
      const frames = (c.frames as Frame[]).filter(mine).map((f) => position.get(f.event_id) ?? -1);
      expect(frames.filter((p, i) => p < 0 || (i > 0 && p <= frames[i - 1]!))).toEqual([]);
      expect(frames).toHaveLength(300);
    } finally {
      c.close();
    }
  }, 180_000);

  it("goes on from the replica standing by when the rendering one stops in the middle of a burst: in order, nothing lost", async () => {
    const active = s.realtimes.find((r) => r.rendering())!;
    expect(active).toBeDefined();
    const going = burst("takeover", 200);
    await feedHolds("takeover", 40);
    s.realtimes.splice(s.realtimes.indexOf(active), 1);
    await active.destroy();
    await going;
    await feedHolds("takeover", 200);
    expect(s.realtimes.map((r) => r.rendering())).toEqual([true]);
    expectInOrder(await feed(), { first: 100, second: 100, third: 100, takeover: 200 });
  }, 180_000);

  it("goes on in order when the rendering one dies without a word: the events it held come first, before later ones", async () => {
    await s.startRealtime();
    const active = s.realtimes.find((r) => r.rendering())!;
    expect(s.realtimes.map((r) => r.rendering()).sort()).toEqual([false, true]);
    const going = burst("crash", 200);
    await feedHolds("crash", 40);
    // As a killed process: its NATS connection gone at once, so what it held is never handed
    // back (it would come again only after the ack wait); its lock goes with its Postgres connection.
    s.realtimes.splice(s.realtimes.indexOf(active), 1);
    await active.backbone.bus.nc.close();
    await active.destroy().catch(() => undefined);
    await going;
    await feedHolds("crash", 200);
    expect(s.realtimes.map((r) => r.rendering())).toEqual([true]);
    expectInOrder(await feed(), { first: 100, second: 100, third: 100, takeover: 200, crash: 200 });
  }, 180_000);
});
