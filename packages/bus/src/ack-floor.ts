import { DeliverPolicy } from "@nats-io/jetstream";
import type { Bus } from "./connection.ts";

/**
 * Makes a consumer deliver from its first unacknowledged message again, for its new holder.
 * The messages the last holder took and did not acknowledge (it died, or handed them back
 * when it stopped) would otherwise come again only after the ack wait, or a nak's delay, after
 * the new holder has handled later ones: out of stream order. Re-created to start just past
 * its ack floor, the consumer delivers them first, in order; whatever of them the last holder
 * had already handled comes again, so the handler must find it done (the feed's Nats-Msg-Id,
 * a read model's applied events). Only for a consumer one replica pulls from at a time (a
 * lease holder's): another puller would lose what it holds. Resolves whether it was re-created.
 */
export async function restartAtAckFloor(bus: Bus, stream: string, durable: string): Promise<boolean> {
  const info = await bus.jsm.consumers.info(stream, durable).catch(() => undefined);
  if (!info || info.num_ack_pending === 0) return false;
  const floor = info.ack_floor.stream_seq;
  const { opt_start_time: _, ...config } = info.config;
  await bus.jsm.consumers.delete(stream, durable);
  // Nothing acknowledged yet: from where it started.
  await bus.jsm.consumers.add(stream, floor > 0 ? { ...config, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: floor + 1 } : info.config);
  return true;
}
