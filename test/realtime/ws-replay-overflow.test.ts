import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { FeedEvent } from "@mam/contracts/realtime-feed.ts";
import { toEventFrame } from "@mam/contracts/ws-frames.ts";
import { WsConnection } from "@mam/realtime/ws/connection.ts";
import type { Directory } from "@mam/realtime/ws/directory.ts";
import { outgoing, Registry } from "@mam/realtime/ws/registry.ts";
import type { ReplayOutcome, ReplayRequest } from "@mam/realtime/ws/resume.ts";
import { decideSubscription, type Ceiling, type DirectoryView } from "@mam/realtime/ws/scope.ts";
import { uuidv7 } from "@mam/runtime/ids.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { feedMessage } from "./ws-support.ts";

/** A client socket that reads everything at once: nothing ever waits in its buffer. */
class ReadingSocket extends EventEmitter {
  readyState: number = WebSocket.OPEN;
  readonly bufferedAmount = 0;
  readonly frames: { type: string; event_id?: string; code?: string }[] = [];
  closed?: number;
  send(data: Buffer): void {
    this.frames.push(JSON.parse(data.toString()));
  }
  close(code: number): void {
    this.closed = code;
    this.readyState = WebSocket.CLOSED;
  }
  terminate(): void {
    this.close(1006);
  }
  ping(): void {}
}

/**
 * A resume while live events keep coming: the live events queued behind the replay are capped
 * like the socket's buffer, but a client that reads is neither held up nor closed by them. Past
 * the cap they are let go and the replay reads on through the feed, which has them: every
 * event once, in order.
 */
describe("a replay with more live events behind it than the buffer cap holds", () => {
  const tenantId = uuidv7();
  const workspaceId = uuidv7();
  const inboxId = uuidv7();
  const dir: DirectoryView = { workspaces: new Map([[workspaceId, { tenantId }]]), inboxes: new Map([[inboxId, { tenantId, workspaceId }]]) };
  const ceiling: Ceiling = { keyId: uuidv7(), kind: "tenant", tenantId, workspaces: "*", inboxId: null };
  const event = (): FeedEvent => ({
    eventId: `evt_${uuidv7()}`,
    eventType: "message.received",
    occurredAt: new Date().toISOString(),
    tenantId,
    workspaceId,
    inboxId,
    message: feedMessage(inboxId, "x".repeat(10_000)),
  });

  it("sends every event once and in order, and keeps the client", async () => {
    const [seen, e1, e2] = [event(), event(), event()];
    const live = Array.from({ length: 12 }, event);
    const seqOf = new Map<FeedEvent, number>(live.map((e, i) => [e, 11 + i]));
    const later = event();
    let replayRequest: ReplayRequest | undefined;
    let goOn!: () => void;
    const paused = new Promise<void>((resolve) => (goOn = resolve));
    const readOns: boolean[] = [];
    const send = (e: FeedEvent) => replayRequest!.send(outgoing(toEventFrame(e)));
    // A stand-in for the feed: two entries up to the replay's end, then (read on) the live ones.
    const replay = async (r: ReplayRequest): Promise<ReplayOutcome> => {
      replayRequest = r;
      expect(await r.room()).toBe(true);
      send(e1);
      await paused;
      // The client reads everything: room at once, whatever is queued behind the replay.
      expect(await Promise.race([r.room(), sleep(2_000).then(() => "held up")])).toBe(true);
      send(e2);
      readOns.push(r.readOn!());
      for (const e of live) send(e);
      readOns.push(r.readOn!());
      return { found: true, lastSeq: seqOf.get(live.at(-1)!)! };
    };
    const ws = new ReadingSocket();
    const c = new WsConnection(ws as unknown as WebSocket, ceiling, { type: "connected" } as never, {
      maxBufferedBytes: 64 * 1024,
      framesPerS: 100,
      directoryWaitMs: 1_000,
      directory: { judge: async (c: Ceiling, f: Parameters<typeof decideSubscription>[1]) => decideSubscription(c, f, dir) } as unknown as Directory,
      registry: new Registry<WsConnection>(),
      replay,
      logger: createLogger("realtime", "silent"),
    });
    c.start();
    ws.emit("message", Buffer.from(JSON.stringify({ type: "subscribe", workspace_ids: [workspaceId], last_event_id: seen.eventId })), false);
    await waitFor(() => ws.frames.some((f) => f.event_id === e1.eventId), { timeoutMs: 5_000, what: "the replay's first event" });

    // 120 KB of live events while the replay runs, twice the cap.
    for (const e of live) c.offer(e, seqOf.get(e)!, outgoing(toEventFrame(e)));
    expect(ws.closed).toBeUndefined();
    goOn();
    await waitFor(() => readOns.length === 2, { timeoutMs: 5_000, what: "the replay's end" });
    // Queued again once the replay reads on: a live event it covers (the fan-out lagging), and one after it.
    c.offer(live.at(-1)!, seqOf.get(live.at(-1)!)!, outgoing(toEventFrame(live.at(-1)!)));
    c.offer(later, 30, outgoing(toEventFrame(later)));
    await waitFor(() => ws.frames.some((f) => f.event_id === later.eventId), { timeoutMs: 5_000, what: "the live event after the replay" });

    expect(readOns).toEqual([true, false]);
    expect(ws.closed).toBeUndefined();
    expect(ws.frames.filter((f) => f.type === "event").map((f) => f.event_id)).toEqual([e1, e2, ...live, later].map((e) => e.eventId));
  });
});
