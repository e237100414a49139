import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import { delay, nanos } from "@nats-io/transport-node";
import { withLogContext, type LogContext } from "@mam/runtime/log-context.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import type { Bus } from "./connection.ts";
import { KeyedRunner } from "./keyed-runner.ts";

export interface ConsumerOptions {
  bus: Bus;
  stream: string;
  durable: string;
  filterSubject: string;
  logger: Logger;
  /** Handles one message. Throwing makes it redelivered later; it must be idempotent. */
  handle: (msg: JsMsg) => Promise<void>;
  /** Messages with the same key are handled in order (by default: the tenant token of the subject). */
  keyOf?: (msg: JsMsg) => string;
  concurrency?: number;
  /**
   * Deliveries before the server gives up on a message; unlimited by default. Accepted mail
   * and events are never dropped for a failure that may heal (a database down for an hour):
   * only poison is terminated, at once.
   */
  maxDeliver?: number;
  /** Pauses between the tries in place, then between returns to the server (tests shorten them). */
  retryInPlaceMs?: number[];
  backoffMs?: number[];
  /** How long a delivered message may stay unacknowledged before it goes to another replica. */
  ackWaitMs?: number;
  /** Failures no retry can cure (an event that does not parse): terminated at once, not retried. */
  isPoison?: (err: unknown) => boolean;
  /**
   * Stream order kept per key (one replica pulls, see SingleActive): a failing message is
   * retried in place, the last pause over and over, until it succeeds, is poison, or the
   * consumer stops; never handed back to the server, which would deliver it after later ones.
   */
  ordered?: boolean;
  /**
   * The ids every line logged while handling a message carries (see log-context.ts); by
   * default its Nats-Msg-Id as `eventId` (an event's id, as the outbox relay publishes it).
   * The handler may add more once it has read the message (addLogContext).
   */
  logContextOf?: (msg: JsMsg) => LogContext;
}

const eventIdOf = (msg: JsMsg): LogContext => ({ eventId: msg.headers?.get("Nats-Msg-Id") || undefined });

/**
 * How long a durable's pull waits on the server (nats.js then pulls again; its heartbeats come
 * every half of it). A pull sent to a cluster node that died is noticed after two missed
 * heartbeats and sent again within this, rather than nats.js's default 30 s; and each new pull
 * moves an idle consumer's position to the stream's end, which is how consumerCaughtUp learns
 * that nothing on its filter came after entries of other subjects.
 */
export const PULL_EXPIRES_MS = 2_000;

/** Retries in place, holding the key's queue, so later events of the same tenant never overtake. */
const RETRY_IN_PLACE_MS = [100, 500, 2_000, 5_000];
const BACKOFF_MS = [5_000, 15_000, 30_000];
/** From this delivery on, a failure is logged as an error (someone should look). */
const STILL_FAILING_AFTER = 10;

/**
 * `evt.<context>.<tenant>.<workspace>.<type>` → the tenant token. Decisions are taken per
 * tenant, and a tenant's events may depend on each other across its workspaces (a slug
 * freed in one and taken in another), so a tenant's events are applied in stream order.
 */
export const tenantKey = (msg: JsMsg) => msg.subject.split(".").at(-3) ?? "_";

/**
 * A durable pull consumer shared by every replica of a service. The loop re-creates its
 * subscription when the server drops it (deleted consumer, missed heartbeats, restart).
 */
export class DurableConsumer {
  private stopped = false;
  private current?: ConsumerMessages;
  private loop?: Promise<void>;
  private readonly runner: KeyedRunner;
  /** Messages this process holds (queued or being handled), by stream sequence. */
  private readonly held = new Map<number, JsMsg>();
  private heartbeat?: NodeJS.Timeout;

  constructor(private readonly o: ConsumerOptions) {
    this.runner = new KeyedRunner(o.concurrency ?? 16);
  }

  async start(): Promise<void> {
    await this.ensure();
    // Every message held says it is still being worked on, well within the ack wait.
    this.heartbeat = setInterval(
      () => {
        for (const msg of this.held.values()) msg.working();
      },
      Math.max(200, (this.o.ackWaitMs ?? 30_000) / 3),
    );
    this.heartbeat.unref();
    this.loop = this.run();
  }

  private async ensure(): Promise<void> {
    const { bus, stream, durable, filterSubject, maxDeliver = -1 } = this.o;
    const ackWait = nanos(this.o.ackWaitMs ?? 30_000);
    const existing = await bus.jsm.consumers.info(stream, durable).catch(() => undefined);
    if (!existing) {
      await bus.jsm.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: filterSubject,
        ack_wait: ackWait,
        max_deliver: maxDeliver,
        max_ack_pending: 1_000,
      });
    } else if (existing.config.ack_wait !== ackWait || existing.config.max_deliver !== maxDeliver || existing.config.filter_subject !== filterSubject) {
      // Settings a newer release changed (a narrower filter among them: the server then delivers
      // only what matches from where the consumer is); the position in the stream stays.
      await bus.jsm.consumers.update(stream, durable, { ack_wait: ackWait, max_deliver: maxDeliver, filter_subject: filterSubject });
    }
  }

  private async run(): Promise<void> {
    const keyOf = this.o.keyOf ?? tenantKey;
    while (!this.stopped) {
      try {
        await this.ensure();
        const consumer = await this.o.bus.js.consumers.get(this.o.stream, this.o.durable);
        // A deleted consumer ends the iteration, so this loop declares it again.
        // Not many more than can be handled at once: a message waiting in the client's buffer
        // has no heartbeat, so a deep buffer behind a slow handler means redeliveries.
        // Short pulls (see PULL_EXPIRES_MS).
        this.current = await consumer.consume({
          max_messages: Math.max(32, 2 * (this.o.concurrency ?? 16)),
          expires: PULL_EXPIRES_MS,
          abort_on_missing_resource: true,
        });
        if (this.stopped) this.current.stop();
        for await (const msg of this.current) {
          // A redelivery of one still here (queued or being handled) is left to the first.
          if (this.held.has(msg.seq)) continue;
          // Held (and kept alive by the heartbeat) from arrival, not from when its turn comes:
          // one waiting behind a slow message must not be handed to another replica meanwhile.
          this.held.set(msg.seq, msg);
          const fields = (this.o.logContextOf ?? eventIdOf)(msg);
          await this.runner.schedule(keyOf(msg), () => withLogContext(fields, () => this.process(msg)).finally(() => this.held.delete(msg.seq)));
        }
      } catch (err) {
        if (!this.stopped) this.o.logger.warn({ err, durable: this.o.durable }, "consumer interrupted; resubscribing");
      }
      if (!this.stopped) await delay(500);
    }
  }

  /**
   * Handles one message. The server redelivers what is not acknowledged within the ack
   * wait: a message this process holds (queued or being handled: a slow relay, a long wait
   * for a lock) is kept alive by the heartbeat meanwhile (see start), so it is not handled a second time
   * elsewhere.
   */
  private async process(msg: JsMsg): Promise<void> {
    const pauses = this.o.retryInPlaceMs ?? RETRY_IN_PLACE_MS;
    for (let i = 0; ; i++) {
      try {
        await this.o.handle(msg);
        msg.ack();
        return;
      } catch (err) {
        if (this.o.isPoison?.(err) || this.stopped || (i >= pauses.length && !this.o.ordered)) return this.giveUp(msg, err);
        if (i >= pauses.length) {
          const level = i >= STILL_FAILING_AFTER ? "error" : "warn";
          this.o.logger[level]({ err, seq: msg.seq, attempt: i + 1 }, "event handling failed; retrying in place, in stream order");
        }
        await delay(pauses[Math.min(i, pauses.length - 1)] ?? RETRY_IN_PLACE_MS.at(-1)!);
        // Stopped meanwhile: handed back for whoever pulls next.
        if (this.stopped) return this.giveUp(msg, err);
      }
    }
  }

  /** Poison is terminated at once; anything else goes back to the server for a later try. */
  private giveUp(msg: JsMsg, err: unknown): void {
    const attempt = msg.info.deliveryCount;
    if (this.o.isPoison?.(err)) {
      this.o.logger.error({ err, seq: msg.seq, subject: msg.subject }, "unreadable message; terminated");
      msg.term();
      return;
    }
    // Unless ordered, a failure that outlasts the in-place retries (a database down for
    // seconds) lets a later event of the tenant pass this one, and the log says it
    // happened. One that keeps failing is an error to look at, not a message to drop.
    const backoff = this.o.backoffMs ?? BACKOFF_MS;
    const level = attempt >= STILL_FAILING_AFTER ? "error" : "warn";
    this.o.logger[level]({ err, seq: msg.seq, attempt }, "event handling failed; will retry later");
    msg.nak(backoff[Math.min(attempt - 1, backoff.length - 1)]);
  }

  /** Everything up to `through` handled (see consumerCaughtUp): the read model has caught up with it. */
  caughtUp(through: number): Promise<boolean> {
    return consumerCaughtUp(this.o.bus, this.o.stream, this.o.durable, through);
  }

  /** How far everything is handled (see consumerCaughtUpThrough). */
  caughtUpThrough(): Promise<number> {
    return consumerCaughtUpThrough(this.o.bus, this.o.stream, this.o.durable);
  }

  /**
   * Stops pulling. What is being handled is given a few seconds; with `drain`, as long as it
   * takes (a handler waiting on a lock): for a caller about to empty what the handler writes
   * (a read model's rebuild), which must not be written into afterwards.
   */
  async stop(o: { drain?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.current?.stop();
    if (o.drain) {
      // Every message the loop still hands over is handled (or handed back) before it ends.
      await this.loop?.catch(() => undefined);
      await this.runner.idle();
    } else {
      // A pull in flight can keep the iterator open until it expires: don't wait for that.
      await Promise.race([this.loop?.catch(() => undefined), delay(2_000)]);
      await Promise.race([this.runner.idle(), delay(5_000)]);
    }
    clearInterval(this.heartbeat);
  }
}

/**
 * Deletes a durable consumer, so that it is declared anew from the first event (a read
 * model's replay). Only its absence is ignored: a refusal or a timeout (a cluster electing
 * the consumer's leader) fails the caller, which would otherwise record the replay as begun
 * while the old consumer goes on from where it was, and the read model is never rebuilt.
 */
export async function deleteConsumer(bus: Bus, stream: string, durable: string): Promise<void> {
  await bus.jsm.consumers.delete(stream, durable).catch((err: unknown) => {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw err;
  });
}

/** The stream's last sequence now: what consumerCaughtUp is then asked to have covered. */
export async function streamEnd(bus: Pick<Bus, "jsm">, stream: string): Promise<number> {
  return (await bus.jsm.streams.info(stream)).state.last_seq;
}

/**
 * Whether a durable consumer has had every entry of its filter up to `through` (a stream
 * sequence, usually streamEnd read before) delivered and acknowledged, by whichever replica
 * pulls it: a replica standing by learns so that the read model it shares has caught up. A
 * consumer not there (deleted for a replay, or being re-created by a new holder) has not.
 *
 * Told by positions, not by the server's pending counts: nats-server 2.9 miscounts those on
 * a filtered consumer once part of it was read (more or fewer than there are, 0 with entries
 * to come included). Caught up when the consumer's position is at or past `through` and so
 * is its ack floor, or nothing awaits an acknowledgement: a pull that finds nothing more on
 * the filter moves the position to the stream's end, and so does the server's heartbeat to a
 * waiting pull. So a consumer nobody pulls never catches up, and one whose filter matched
 * nothing lately does within a heartbeat of its puller (half of PULL_EXPIRES_MS). One still
 * handling an entry past `through` is not caught up until it is acknowledged (the floor moves
 * on acknowledgements only).
 */
export async function consumerCaughtUp(bus: Pick<Bus, "jsm">, stream: string, durable: string, through: number): Promise<boolean> {
  return (await consumerCaughtUpThrough(bus, stream, durable)) >= through;
}

/**
 * The furthest stream sequence a durable consumer is caught up through (see consumerCaughtUp):
 * its position, or its ack floor if below that while entries await an acknowledgement; -1 when
 * the consumer is not there.
 */
export async function consumerCaughtUpThrough(bus: Pick<Bus, "jsm">, stream: string, durable: string): Promise<number> {
  const info = await bus.jsm.consumers.info(stream, durable).catch((err: unknown) => {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound) return undefined;
    throw err;
  });
  if (!info) return -1;
  // The floor with the position: a late acknowledgement from an earlier consumer of the same
  // name (a replica finishing what it held when the consumer was re-created for a replay) can
  // move the floor past what this one has not delivered.
  return info.num_ack_pending === 0 ? info.delivered.stream_seq : Math.min(info.delivered.stream_seq, info.ack_floor.stream_seq);
}
