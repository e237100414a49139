import { AckPolicy, DeliverPolicy, type ConsumerInfo, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import { delay, nanos } from "@nats-io/transport-node";
import type { Bus } from "./connection.ts";
import { PULL_EXPIRES_MS } from "./consumer.ts";
import type { Logger } from "@mam/runtime/logger.ts";

export interface BatchConsumerOptions {
  bus: Bus;
  stream: string;
  durable: string;
  filterSubject: string;
  logger: Logger;
  /**
   * Handles the messages that arrived together, in stream order, and settles each one
   * (ack, nak or term). Whatever it leaves unsettled, or all of them if it throws, is
   * handed back to the server for a later try.
   */
  handle: (batch: JsMsg[], settle: Settle) => Promise<void>;
  /** Acknowledged as they arrive, never handled (events the handler has no use for). */
  skip?: (msg: JsMsg) => boolean;
  /** Most messages in one batch. */
  maxBatch?: number;
  /**
   * How long a batch waits for more once its first message is here (none by default). For a
   * consumer nobody waits on (usage counters): a light stream then still comes in batches of
   * several, one transaction each, instead of one transaction per message.
   */
  lingerMs?: number;
  /**
   * How long after a batch began the next one may begin (none by default). Unlike a linger it
   * costs nothing to a message after a quiet spell, which goes at once; under a steady stream
   * what arrives meanwhile gathers, so a handler that pays a round trip per batch (a lookup)
   * pays it at most once per spacing however many messages come.
   */
  spacingMs?: number;
  /**
   * Where a consumer created for the first time starts: this far back in the stream; without
   * it, at the stream's first message (a read model built from the whole history).
   */
  startBackMs?: number;
  /**
   * Where a consumer this replica creates starts instead, when the handler knows better than
   * `startBackMs` (undefined: it does not): a stream sequence, and a description left on the
   * consumer for every replica to read (see `onConsumer`).
   */
  startAt?: () => Promise<{ seq: number; description: string } | undefined>;
  /** Told the consumer as found or created, each time before messages are taken from it. */
  onConsumer?: (info: ConsumerInfo) => Promise<void>;
  ackWaitMs?: number;
  /**
   * Stream order kept (one consumer holder at a time): a message left unsettled or handed back
   * (nak, or the handler threw) stays here, first in line, and is tried again after a pause,
   * before anything behind it. Handed back to the server, it would come again after later ones.
   */
  ordered?: boolean;
  /**
   * Pauses before an ordered batch's first message left unsettled is tried again, growing while
   * that same message stays first in line (1, 5, 15, 30 s by default): a batch that made progress
   * starts again from the first pause.
   */
  retryPausesMs?: readonly number[];
}

/** Acknowledges a handled message, terminates poison, or hands one back for a later try. */
export type Settle = (msg: JsMsg, how: "ack" | "term" | "nak") => void;

const BACKOFF_MS = [1_000, 5_000, 15_000, 30_000];

/**
 * A durable pull consumer whose messages are handled a batch at a time: whatever arrived
 * while the previous batch was being handled goes together in the next one, so under load
 * a round trip serves many messages, and when idle a message waits for nobody. Shared by a
 * service's replicas (each message goes to one of them). The loop re-creates its
 * subscription when the server drops it, as DurableConsumer's does.
 */
export class BatchConsumer {
  private stopped = false;
  private current?: ConsumerMessages;
  private pump?: Promise<void>;
  private worker?: Promise<void>;
  /** Arrived, not yet handed to a batch. */
  private queue: JsMsg[] = [];
  /** Being handled. */
  private inBatch: JsMsg[] = [];
  private wake?: () => void;
  private roomMade?: () => void;
  private heartbeat?: NodeJS.Timeout;
  private readonly maxBatch: number;
  /** Stream sequences of the messages held (queued or in the batch). */
  private readonly held = new Set<number>();
  /** The pauses under way (a linger, a wait before a retry): each ends at once when stop begins. */
  private readonly pauses = new Set<() => void>();
  /** Ends the linger under way, if any. */
  private batchFull?: () => void;

  constructor(private readonly o: BatchConsumerOptions) {
    this.maxBatch = o.maxBatch ?? 256;
  }

  async start(): Promise<void> {
    await this.ensure();
    // Every message held (queued or in the batch) says it is being worked on, within the ack wait.
    this.heartbeat = setInterval(
      () => {
        for (const m of this.queue) m.working();
        for (const m of this.inBatch) m.working();
      },
      Math.max(200, (this.o.ackWaitMs ?? 30_000) / 3),
    );
    this.heartbeat.unref();
    this.pump = this.run();
    this.worker = this.work();
  }

  private async ensure(): Promise<void> {
    const { bus, stream, durable, filterSubject } = this.o;
    const ackWait = nanos(this.o.ackWaitMs ?? 30_000);
    let info = await bus.jsm.consumers.info(stream, durable).catch(() => undefined);
    if (info) {
      if (info.config.ack_wait !== ackWait) info = await bus.jsm.consumers.update(stream, durable, { ack_wait: ackWait });
    } else {
      const at = await this.o.startAt?.();
      try {
        info = await bus.jsm.consumers.add(stream, {
          durable_name: durable,
          ack_policy: AckPolicy.Explicit,
          ...(at
            ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: at.seq, description: at.description }
            : this.o.startBackMs !== undefined
              ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(Date.now() - this.o.startBackMs).toISOString() }
              : { deliver_policy: DeliverPolicy.All }),
          filter_subject: filterSubject,
          ack_wait: ackWait,
          max_deliver: -1,
          max_ack_pending: 4 * this.maxBatch,
        });
      } catch (err) {
        // Another replica created it first (its start differs by a few milliseconds or messages).
        info = await bus.jsm.consumers.info(stream, durable).catch(() => undefined);
        if (!info) throw err;
      }
    }
    await this.o.onConsumer?.(info);
  }

  /** Takes messages from the server into the queue, pausing while a batch's worth waits. */
  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.ensure();
        const consumer = await this.o.bus.js.consumers.get(this.o.stream, this.o.durable);
        this.current = await consumer.consume({ max_messages: this.maxBatch, expires: PULL_EXPIRES_MS, abort_on_missing_resource: true });
        if (this.stopped) this.current.stop();
        for await (const msg of this.current) {
          if (this.o.skip?.(msg)) {
            msg.ack();
            continue;
          }
          // A redelivery of one still held here is left to the first.
          if (this.held.has(msg.seq)) continue;
          this.held.add(msg.seq);
          this.queue.push(msg);
          this.wake?.();
          if (this.queue.length >= this.maxBatch) this.batchFull?.();
          while (this.queue.length >= this.maxBatch && !this.stopped) await new Promise<void>((r) => (this.roomMade = r));
        }
      } catch (err) {
        if (!this.stopped) this.o.logger.warn({ err, durable: this.o.durable }, "consumer interrupted; resubscribing");
      }
      if (!this.stopped) await delay(500);
    }
  }

  private async work(): Promise<void> {
    /** Tries in a row of the message first in line (ordered), and that message. */
    let tries = 0;
    let firstInLine: JsMsg | undefined;
    const pauses = this.o.retryPausesMs ?? BACKOFF_MS;
    /** When the last batch began (performance.now()). */
    let began = Number.NEGATIVE_INFINITY;
    while (!this.stopped) {
      if (!this.queue.length) {
        await new Promise<void>((r) => (this.wake = r));
        continue;
      }
      const wait = Math.max(this.o.lingerMs ?? 0, began + (this.o.spacingMs ?? 0) - performance.now());
      if (wait > 0 && this.queue.length < this.maxBatch) {
        // Ended early by a full batch (see run).
        await this.pause(wait, (end) => (this.batchFull = end));
        this.batchFull = undefined;
      }
      if (this.stopped) break;
      began = performance.now();
      const batch = this.queue.splice(0, this.maxBatch);
      this.inBatch = batch;
      this.roomMade?.();
      const settled = new Set<JsMsg>();
      const settle: Settle = (msg, how) => {
        if (settled.has(msg) || (how === "nak" && this.o.ordered)) return;
        settled.add(msg);
        if (how === "ack") msg.ack();
        else if (how === "term") msg.term();
        else nakLater(msg);
      };
      try {
        await this.o.handle(batch, settle);
      } catch (err) {
        this.o.logger.warn({ err, durable: this.o.durable, messages: batch.length }, "batch failed; its messages will be tried again");
      }
      const left = batch.filter((m) => !settled.has(m));
      for (const m of batch) if (settled.has(m) || !this.o.ordered) this.held.delete(m.seq);
      if (this.o.ordered && left.length) {
        if (left[0] !== firstInLine) {
          firstInLine = left[0];
          tries = 0;
        }
        this.queue.unshift(...left);
        this.inBatch = [];
        await this.pause(pauses[Math.min(tries++, pauses.length - 1)]!);
        continue;
      }
      tries = 0;
      firstInLine = undefined;
      for (const m of left) nakLater(m);
      this.inBatch = [];
    }
  }

  /**
   * Waits `ms`, or until stop begins. Each pause forgets itself when it ends (a race against
   * one promise settled only at stop would keep every pause's callback until then: one per
   * batch, for as long as the consumer runs).
   */
  private pause(ms: number, started?: (end: () => void) => void): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const end = () => {
        clearTimeout(timer);
        this.pauses.delete(end);
        resolve();
      };
      const timer = setTimeout(end, ms);
      this.pauses.add(end);
      started?.(end);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const end of [...this.pauses]) end();
    this.current?.stop();
    this.wake?.();
    this.roomMade?.();
    // A pull in flight can keep the iterator open until it expires: don't wait for that.
    await Promise.race([this.pump?.catch(() => undefined), delay(2_000)]);
    await Promise.race([this.worker?.catch(() => undefined), delay(5_000)]);
    // What waited here goes to another replica now rather than after the ack wait.
    for (const m of this.queue.splice(0)) {
      m.nak();
      this.held.delete(m.seq);
    }
    clearInterval(this.heartbeat);
  }
}

/** Back to the server, to be delivered again after a pause that grows with each try. */
function nakLater(msg: JsMsg): void {
  msg.nak(BACKOFF_MS[Math.min(msg.info.deliveryCount - 1, BACKOFF_MS.length - 1)]);
}
