import { setTimeout as sleep } from "node:timers/promises";
import WebSocket from "ws";
import type { FeedEvent } from "@mam/contracts/realtime-feed.ts";
import { WsClose, type ServerFrame, type SubscribeFrame, type WsErrorCode } from "@mam/contracts/ws-frames.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import { FrameGate, readFrame } from "./client-frames.ts";
import type { Directory } from "./directory.ts";
import { outgoing, type Outgoing, type Registered, type Registry } from "./registry.ts";
import type { ReplayOutcome, ReplayRequest } from "./resume.ts";
import { matches, type Ceiling, type Filters } from "./scope.ts";
import { TokenBucket } from "./token-bucket.ts";

export interface ConnectionDeps {
  maxBufferedBytes: number;
  framesPerS: number;
  directoryWaitMs: number;
  directory: Directory;
  registry: Registry<WsConnection>;
  /** Reads the feed from a past event on (resume.ts), bound to this replica's bus and stream. */
  replay: (r: ReplayRequest) => Promise<ReplayOutcome>;
  logger: Logger;
}

type Connected = Extract<ServerFrame, { type: "connected" }>;

/** Live events that arrived while a replay runs: sent after it, those it did not send already. */
interface Replaying {
  epoch: number;
  queue: { seq: number; out: Outgoing }[];
  /**
   * Live events came faster than the cap holds while the replay ran: the queue was let go, and
   * later ones are not queued, since the feed has them all: the replay reads on past its end.
   */
  shed: boolean;
}

const NOT_FOUND_MESSAGE = "Not found: this subscription names a workspace or inbox this key cannot see";

/**
 * Resumes a connection may ask for: a few at once, then one every few seconds. Each reads the
 * feed through a consumer of its own on the server, so a client re-sending `last_event_id`
 * in a loop must not turn into as many consumers.
 */
const RESUME_BURST = 3;
const RESUME_EVERY_MS = 5_000;
/** How long a replay waits for a client to read before it is closed as a slow consumer. */
const ROOM_WAIT_MS = 60_000;

/**
 * One client: its ceiling (the key's scope), its filters, the frames it sends and is sent.
 * What waits to go out to it (the socket's buffer, and live events queued behind a replay)
 * is bounded: past the cap it is closed as a slow consumer, never queued without end.
 */
export class WsConnection implements Registered {
  filters: Filters | null = null;
  workspaceOfInbox: string | null = null;
  /** When the client last sent anything (a frame, or a protocol pong). */
  lastHeard = Date.now();
  /** A subscribe frame is being judged; the next one waits (a newer one takes the place of a waiting one). */
  private judging = false;
  private waiting?: SubscribeFrame;
  /** Bumped when a subscription is applied (or the connection leaves): a replay of an earlier one stops. */
  private epoch = 0;
  private replaying?: Replaying;
  /** The stream sequence a finished replay went up to: a live entry at or below it was sent by the replay (the fan-out may lag behind it). */
  private replayedTo = 0;
  /** The replay running (or none): the next one starts once it has ended, so a connection has one feed consumer at a time. */
  private replayRun: Promise<void> = Promise.resolve();
  private readonly resumes = new TokenBucket({ burst: RESUME_BURST, refill: 1, everyMs: RESUME_EVERY_MS });
  private queuedBytes = 0;
  private closing = false;
  private readonly frames: FrameGate;

  constructor(
    readonly ws: WebSocket,
    readonly ceiling: Ceiling,
    private readonly hello: Connected,
    private readonly d: ConnectionDeps,
    /** The per-inbox path: subscribed to its inbox without a frame (resuming when its query said so). */
    private readonly autoSubscribe?: SubscribeFrame,
  ) {
    this.frames = new FrameGate(d.framesPerS);
  }

  get open(): boolean {
    return !this.closing && this.ws.readyState === WebSocket.OPEN;
  }

  start(): void {
    const { ws } = this;
    ws.on("message", (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on("pong", () => (this.lastHeard = Date.now()));
    ws.on("close", () => this.ended());
    ws.on("error", (err) => this.d.logger.debug({ err: err.message }, "websocket error"));
    this.send(this.hello);
    if (this.autoSubscribe) this.enqueue(this.autoSubscribe);
  }

  /** A `ping` frame and a protocol ping; a client silent for two intervals is dropped. */
  ping(silentForMs: number): void {
    if (!this.open) return;
    if (Date.now() - this.lastHeard > silentForMs) {
      this.d.logger.info({ tenantId: this.ceiling.tenantId }, "websocket client silent; dropped");
      this.leave();
      this.ws.terminate();
      return;
    }
    this.send({ type: "ping", timestamp: new Date().toISOString() });
    this.ws.ping();
  }

  close(code: number, reason: string): void {
    if (this.closing) return;
    this.leave();
    this.ws.close(code, reason);
  }

  /** Out of dispatch at once (a closing connection is sent nothing more), its replay abandoned. */
  private leave(): void {
    this.closing = true;
    this.waiting = undefined;
    this.epoch++;
    this.replaying = undefined;
    this.queuedBytes = 0;
    this.d.registry.remove(this);
  }

  private ended(): void {
    if (!this.closing) this.leave();
  }

  offer(e: FeedEvent, seq: number, out: Outgoing): void {
    if (!this.filters || seq <= this.replayedTo || !matches(this.ceiling, this.filters, e)) return;
    const r = this.replaying;
    if (!r) return void this.push(out);
    if (r.shed) return;
    r.queue.push({ seq, out });
    this.queuedBytes += out.bytes;
    if (this.overCap(0) && !this.shed()) this.slow();
  }

  /**
   * Lets go of the live events queued behind a replay (they are in the feed, which the replay
   * then reads on to), so that they never hold up the replay or close a client that reads.
   * False when no replay queues anything.
   */
  private shed(): boolean {
    const r = this.replaying;
    if (!r?.queue.length) return false;
    r.queue = [];
    r.shed = true;
    this.queuedBytes = 0;
    return true;
  }

  /** Whether the replay must read on (live events were let go since it last asked); queued again from now. */
  private readOn(epoch: number): boolean {
    const r = this.replaying;
    if (!r || r.epoch !== epoch || !r.shed) return false;
    r.shed = false;
    return true;
  }

  private send(frame: ServerFrame): void {
    this.push(outgoing(frame));
  }

  private error(code: WsErrorCode, message: string): void {
    this.send({ type: "error", code, message });
  }

  /** False once the connection is closing (it was, or this frame made it a slow consumer). */
  private push(out: Outgoing): boolean {
    if (!this.open) return false;
    // Live events queued behind a replay go first (the feed has them: see shed).
    if (this.overCap(out.bytes)) this.shed();
    if (this.overCap(out.bytes)) {
      this.slow();
      return false;
    }
    this.ws.send(out.data, { binary: false });
    return true;
  }

  private overCap(more: number): boolean {
    return this.ws.bufferedAmount + this.queuedBytes + more > this.d.maxBufferedBytes;
  }

  private slow(): void {
    this.d.logger.info({ tenantId: this.ceiling.tenantId, buffered: this.ws.bufferedAmount, queued: this.queuedBytes }, "websocket client too slow; closed");
    this.close(WsClose.slowConsumer, "Too slow: send buffer full; reconnect and resume with last_event_id");
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    this.lastHeard = Date.now();
    if (!this.open) return;
    const admitted = this.frames.admit();
    if (admitted !== "pass") {
      if (admitted === "tell") this.error("RATE_LIMITED", `More than ${this.d.framesPerS} frames a second: frames dropped`);
      return;
    }
    const frame = readFrame(data, isBinary);
    if ("code" in frame) {
      this.error(frame.code, frame.message);
      return;
    }
    switch (frame.type) {
      case "ping":
        this.send({ type: "pong", timestamp: new Date().toISOString() });
        return;
      case "pong":
        return;
      case "subscribe":
        this.enqueue(frame);
        return;
      default: {
        const unreachable: never = frame;
        throw new Error(`unknown frame ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /** Subscribe frames are judged one at a time, in order. */
  private enqueue(frame: SubscribeFrame): void {
    this.waiting = frame;
    if (!this.judging) void this.judgeWaiting();
  }

  private async judgeWaiting(): Promise<void> {
    this.judging = true;
    try {
      for (let frame = this.waiting; frame && this.open; frame = this.waiting) {
        this.waiting = undefined;
        await this.subscribe(frame);
      }
    } catch (err) {
      this.failed(err);
    } finally {
      this.judging = false;
    }
  }

  /**
   * A subscribe frame replaces the filters once it is judged inside the key's scope; until
   * then, and if it is refused, the previous ones stay (with their replay, if one runs). An
   * applied one stops a replay still running for the one before.
   */
  private async subscribe(frame: SubscribeFrame): Promise<void> {
    if (frame.last_event_id && !this.resumes.take()) {
      return this.error(
        "RATE_LIMITED",
        `At most ${RESUME_BURST} resumes at once, then one every ${RESUME_EVERY_MS / 1000} s: this subscribe frame was dropped`,
      );
    }
    const newer = () => this.waiting !== undefined;
    const decision = await this.d.directory.judge(this.ceiling, frame, this.d.directoryWaitMs, () => this.open, newer);
    if (!this.open) return;
    // Superseded: a newer frame is judged instead, as one still queued would have been replaced.
    if (decision === "superseded") return void (frame.last_event_id && this.resumes.giveBack());
    if (!decision.ok) return this.error("NOT_FOUND", NOT_FOUND_MESSAGE);
    const epoch = ++this.epoch;
    this.filters = decision.filters;
    this.workspaceOfInbox = decision.workspaceOfInbox;
    this.replaying = undefined;
    this.queuedBytes = 0;
    this.d.registry.refile(this);
    this.send(decision.subscribed);
    if (!frame.last_event_id) return;
    // From here on, live events queue until the replay has sent what came before them.
    this.replaying = { epoch, queue: [], shed: false };
    const lastEventId = frame.last_event_id;
    // Not awaited: the next subscribe frame is judged meanwhile (and, applied, ends the replay).
    // After the one before has ended (it stops at its next entry once this one is applied), and
    // only if no newer subscription has been applied by then.
    this.replayRun = this.replayRun.then(async () => {
      if (this.epoch !== epoch || !this.open) return;
      await this.d
        .replay({
          lastEventId,
          scope: decision.resume,
          accept: (e) => this.epoch === epoch && !!this.filters && matches(this.ceiling, this.filters, e),
          send: (out) => this.epoch === epoch && this.push(out),
          room: () => this.room(epoch),
          readOn: () => this.readOn(epoch),
        })
        .then(
          (outcome) => this.finishReplay(epoch, outcome),
          (err: unknown) => void (this.epoch === epoch && this.failed(err)),
        );
    });
  }

  /**
   * Until the socket's buffer is under half the cap: a replay goes at the client's pace (live
   * events queued meanwhile do not count: they are let go when they would not fit, see shed).
   * A client that does not read for a long while is a slow consumer (its replay's consumer is
   * not kept on the server for it).
   */
  private async room(epoch: number): Promise<boolean> {
    const deadline = Date.now() + ROOM_WAIT_MS;
    while (this.epoch === epoch && this.open && this.ws.bufferedAmount > this.d.maxBufferedBytes / 2) {
      if (Date.now() > deadline) {
        this.slow();
        return false;
      }
      await sleep(10);
    }
    return this.epoch === epoch && this.open;
  }

  private finishReplay(epoch: number, outcome: ReplayOutcome): void {
    const r = this.replaying;
    if (epoch !== this.epoch || !r || r.epoch !== epoch || !this.open) return;
    this.replaying = undefined;
    this.queuedBytes = 0;
    // Not found, the client is told "live events from now": those let go meanwhile are not
    // replayed, so it is closed instead, to resume from its last event.
    if (!outcome.found && r.shed) {
      this.slow();
      return;
    }
    if (outcome.found) {
      this.replayedTo = Math.max(this.replayedTo, outcome.lastSeq);
      for (const q of r.queue) if (q.seq > outcome.lastSeq && !this.push(q.out)) return;
      return;
    }
    this.error(
      outcome.code,
      outcome.code === "RESUME_TOO_OLD"
        ? "last_event_id is older than the feed keeps: live events from now"
        : "last_event_id was not found: live events from now",
    );
    for (const q of r.queue) if (!this.push(q.out)) return;
  }

  /** The directory or the feed could not be read: the client reconnects and resumes. */
  private failed(err: unknown): void {
    this.d.logger.warn({ err: (err as Error)?.message }, "websocket subscription failed");
    this.close(1011, "Temporarily unavailable: reconnect and resume with last_event_id");
  }
}
