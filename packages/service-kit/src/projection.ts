import type { JsMsg } from "@nats-io/jetstream";
import { DurableConsumer } from "@mam/bus/consumer.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import type { Backbone } from "./backbone.ts";
import { checkpointOf } from "./event-sourcing.ts";
import type { RecentlyApplied } from "./recent.ts";

export interface ProjectionOptions {
  backbone: Backbone<any>;
  /** Name of the checkpoint row; also the durable consumer's name. */
  projection: string;
  filterSubject: string;
  handle: (msg: JsMsg) => Promise<void>;
  isPoison?: (err: unknown) => boolean;
  /** Events this process already applied inline: acknowledged without being handled. */
  recent?: RecentlyApplied;
}

/**
 * Starts a read model's durable consumer. A read model without a checkpoint was dropped
 * or never built, so its consumer is recreated to replay from the first event. Resolves
 * once it has caught up: decisions are taken against it, so nothing is served before.
 */
export async function startProjection(o: ProjectionOptions): Promise<DurableConsumer> {
  const { backbone: b } = o;
  if ((await checkpointOf(b.db, o.projection)) === undefined) {
    await b.bus.jsm.consumers.delete(b.stream, o.projection).catch(() => false);
  }
  const consumer = new DurableConsumer({
    bus: b.bus,
    stream: b.stream,
    durable: o.projection,
    filterSubject: o.filterSubject,
    logger: b.logger,
    // The event id is the message's Nats-Msg-Id (see appendEvent).
    handle: o.recent ? (msg) => (o.recent!.take(msg.headers?.get("Nats-Msg-Id")) ? Promise.resolve() : o.handle(msg)) : o.handle,
    isPoison: o.isPoison,
    // A restarted replica waits for what a crashed one left unacknowledged before it serves:
    // applying an event takes milliseconds, so that wait need not be long.
    ackWaitMs: 10_000,
  });
  await consumer.start();
  await waitFor(() => consumer.caughtUp(), { timeoutMs: 10 * 60_000, intervalMs: 50, what: `${o.projection} read model` });
  return consumer;
}
