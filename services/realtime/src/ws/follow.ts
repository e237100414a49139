import type { Consumer, ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import { delay } from "@nats-io/transport-node";
import type { Bus } from "@mam/bus/connection.ts";
import type { Logger } from "@mam/runtime/logger.ts";

export interface FollowOptions {
  bus: Bus;
  stream: string;
  filter: string;
  /** Where to begin: new messages only, or from a time (ISO-8601). */
  from: { new: true } | { time: string };
  logger: Logger;
  what: string;
  /** Handles one message; what it throws is logged, and the next message comes. */
  handle: (m: JsMsg) => void;
}

/**
 * Follows a stream through an ordered consumer (no acknowledgements, a random name, gone
 * when idle). Should it end (its stream recreated, a long outage), it is declared again
 * after the last message handled, so nothing in between is skipped. After a reconnection
 * to NATS it is declared again at once the same way: the client library's own recovery of
 * an ordered consumer can stall until its heartbeats are missed (tens of seconds without
 * events, or revocations).
 */
export class Follower {
  private consumer?: Consumer;
  private messages?: ConsumerMessages;
  private stopped = false;
  private lastSeq = 0;
  private loop?: Promise<void>;
  /** The consumption was stopped to be declared again (a reconnection), not because it failed. */
  private renew = false;

  constructor(private readonly o: FollowOptions) {}

  /** Resolves once the consumer exists: what is published after that is seen. */
  async start(): Promise<void> {
    if ("new" in this.o.from) {
      // New ones: after the stream's last entry now (a sequence, so that declaring it again skips nothing).
      this.lastSeq = (await this.o.bus.jsm.streams.info(this.o.stream)).state.last_seq;
    }
    this.messages = await this.open();
    this.loop = this.run(this.messages);
    void this.watchReconnects();
  }

  private async open(): Promise<ConsumerMessages> {
    const { bus, stream, filter, from } = this.o;
    this.consumer?.delete().catch(() => false);
    const start = this.lastSeq || "new" in from ? { opt_start_seq: this.lastSeq + 1 } : { opt_start_time: from.time };
    this.consumer = await bus.js.consumers.get(stream, { filter_subjects: filter, ...start });
    return this.consumer.consume({ max_messages: 256 });
  }

  private async run(first: ConsumerMessages): Promise<void> {
    let messages: ConsumerMessages | undefined = first;
    while (!this.stopped) {
      try {
        messages ??= this.messages = await this.open();
        if (this.stopped) messages.stop();
        for await (const m of messages) {
          this.lastSeq = m.seq;
          try {
            this.o.handle(m);
          } catch (err) {
            this.o.logger.warn({ err, seq: m.seq, what: this.o.what }, "message not handled");
          }
        }
      } catch (err) {
        if (!this.stopped) this.o.logger.warn({ err, what: this.o.what }, "ordered consumer interrupted; declaring it again");
      }
      messages = undefined;
      if (this.renew) this.renew = false;
      else if (!this.stopped) await delay(1_000);
    }
  }

  private async watchReconnects(): Promise<void> {
    for await (const s of this.o.bus.nc.status()) {
      if (this.stopped) return;
      if (s.type !== "reconnect") continue;
      this.o.logger.info({ what: this.o.what, after: this.lastSeq }, "reconnected to NATS; ordered consumer declared again");
      this.renew = true;
      this.messages?.stop();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.messages?.stop();
    await Promise.race([this.loop, delay(2_000)]);
    await this.consumer?.delete().catch(() => false);
  }
}
