import { DeliverPolicy, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
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
 * when idle). The client library recreates it after the server's hiccups; should it still
 * end (its stream recreated, a long outage), it is declared again after the last message
 * handled, so nothing in between is skipped.
 */
export class Follower {
  private messages?: ConsumerMessages;
  private stopped = false;
  private lastSeq = 0;
  private loop?: Promise<void>;

  constructor(private readonly o: FollowOptions) {}

  /** Resolves once the consumer exists: what is published after that is seen. */
  async start(): Promise<void> {
    this.messages = await this.open();
    this.loop = this.run(this.messages);
  }

  private async open(): Promise<ConsumerMessages> {
    const { bus, stream, filter, from } = this.o;
    const start = this.lastSeq ? { opt_start_seq: this.lastSeq + 1 } : "new" in from ? { deliver_policy: DeliverPolicy.New } : { opt_start_time: from.time };
    const consumer = await bus.js.consumers.get(stream, { filter_subjects: filter, ...start });
    return consumer.consume({ max_messages: 256 });
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
      if (!this.stopped) await delay(1_000);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.messages?.stop();
    await Promise.race([this.loop, delay(2_000)]);
  }
}
