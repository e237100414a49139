import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeBus, connectBus, type Bus } from "@mam/bus/connection.ts";
import { ensureFeedStream } from "@mam/bus/streams.ts";
import { type FeedEvent, feedSubject } from "@mam/contracts/realtime-feed.ts";
import { replayFeed, type ReplayRequest } from "@mam/realtime/ws/resume.ts";
import { uuidv7 } from "@mam/runtime/ids.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { isolate } from "@mam/testing/isolation.ts";
import type { Outgoing } from "@mam/realtime/ws/registry.ts";
import { feedMessage } from "./ws-support.ts";

/**
 * A resume's replay read straight from a feed stream of this file's own: where it ends is the
 * scope's newest entry when it starts, whatever else is written meanwhile, and it ends even when
 * the entries it was to read are removed under it. (Through the door, with two replicas, in
 * ws.test.ts.)
 */
describe("replayFeed", () => {
  const iso = isolate();
  const logger = createLogger("realtime", "silent");
  const tenantId = uuidv7();
  const mine = { tenantId, workspaceId: uuidv7(), inboxId: uuidv7() };
  const other = { tenantId, workspaceId: uuidv7(), inboxId: uuidv7() };
  let bus: Bus;
  let stream: string;

  const write = async (scope: typeof mine): Promise<{ e: FeedEvent; seq: number }> => {
    const e: FeedEvent = {
      eventId: `evt_${uuidv7()}`,
      eventType: "message.received",
      occurredAt: new Date().toISOString(),
      ...scope,
      message: feedMessage(scope.inboxId),
    };
    const ack = await bus.js.publish(feedSubject(bus.prefix, e), JSON.stringify(e), { msgID: e.eventId });
    return { e, seq: ack.seq };
  };

  /** Replays from `lastEventId` for the workspace of `mine`, collecting the event ids it sends. */
  const replay = async (lastEventId: string, o: { room?: () => Promise<boolean>; stallMs?: number; readOn?: () => boolean } = {}) => {
    const sent: string[] = [];
    const r: ReplayRequest = {
      lastEventId,
      scope: { tenantId, workspaceId: mine.workspaceId },
      accept: () => true,
      send: (out: Outgoing) => {
        sent.push((JSON.parse(out.data.toString()) as { event_id: string }).event_id);
        return true;
      },
      room: o.room ?? (async () => true),
      readOn: o.readOn,
    };
    const outcome = await replayFeed({ bus, stream, retentionS: 3600, logger, stallMs: o.stallMs }, r);
    return { outcome, sent };
  };

  beforeAll(async () => {
    bus = await connectBus({ url: iso.urls.NATS_URL, prefix: iso.prefix, name: "resume-test", logger });
    stream = await ensureFeedStream(bus, 3600);
  });
  afterAll(async () => {
    await bus.jsm.streams.delete(stream).catch(() => false);
    await closeBus(bus);
  });

  it("sends what follows the last event in its scope, and ends at the scope's newest entry while another scope is written", async () => {
    const ours = [];
    for (let i = 0; i < 5; i++) {
      ours.push(await write(mine));
      await write(other);
    }
    // Another scope keeps being written for the whole replay: the replay neither waits for it nor sends it.
    let writing = true;
    const writer = (async () => {
      while (writing) await write(other);
    })();
    try {
      const middle = await replay(ours[1]!.e.eventId);
      expect(middle.sent).toEqual(ours.slice(2).map((x) => x.e.eventId));
      expect(middle.outcome).toEqual({ found: true, lastSeq: ours[4]!.seq });
      // From the newest entry (a reconnect right after the last event seen): found, nothing to send.
      const newest = await replay(ours[4]!.e.eventId);
      expect(newest).toEqual({ outcome: { found: true, lastSeq: ours[4]!.seq }, sent: [] });
    } finally {
      writing = false;
      await writer;
    }
  });

  it("reads on past its end, to the scope's newest entry then, each time the connection let live events go", async () => {
    const ours = [];
    for (let i = 0; i < 3; i++) ours.push(await write(mine));
    const during: Awaited<ReturnType<typeof write>>[] = [];
    let calls = 0;
    // Written while the replay runs (after its end was read): the live events the connection let go.
    const room = async () => {
      if (++calls === 2) for (let i = 0; i < 3; i++) during.push(await write(mine));
      return true;
    };
    const asked: boolean[] = [];
    const readOn = () => {
      asked.push(asked.length === 0);
      return asked.at(-1)!;
    };
    const { outcome, sent } = await replay(ours[0]!.e.eventId, { room, readOn });
    expect(sent).toEqual([...ours.slice(1), ...during].map((x) => x.e.eventId));
    expect(outcome).toEqual({ found: true, lastSeq: during.at(-1)!.seq });
    expect(asked).toEqual([true, false]);
  });

  it("answers RESUME_UNKNOWN_EVENT for an id its scope never held, after reading to the scope's newest entry", async () => {
    const theirs = await write(other);
    await write(mine);
    expect(await replay(theirs.e.eventId)).toEqual({ outcome: { found: false, code: "RESUME_UNKNOWN_EVENT" }, sent: [] });
  });

  it("ends with what it read when the entries it was to read are removed meanwhile", async () => {
    const ours = [];
    for (let i = 0; i < 100; i++) ours.push(await write(mine));
    const removed = ours.slice(80);
    let calls = 0;
    // The first call is before the replay starts; the second, after the first entry it read.
    const room = async () => {
      if (++calls === 2) for (const x of removed) await bus.jsm.streams.deleteMessage(stream, x.seq, false);
      return true;
    };
    const { outcome, sent } = await replay(ours[0]!.e.eventId, { room, stallMs: 300 });
    expect(outcome).toEqual({ found: true, lastSeq: ours[79]!.seq });
    expect(sent).toEqual(ours.slice(1, 80).map((x) => x.e.eventId));
  });
});
