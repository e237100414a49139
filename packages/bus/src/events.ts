import type { PubAck } from "@nats-io/jetstream";
import type { Bus } from "./connection.ts";

/**
 * Appends an event durably, encoded as the outbox keeps it, on its subject without the
 * deployment's prefix. The event id is the `Nats-Msg-Id`, so a retried append of the same
 * event inside the duplicate window is stored once (`ack.duplicate`). With `afterId`, the
 * stream stores it only if its last message is that event (`Nats-Expected-Last-Msg-Id`;
 * error 10070 otherwise).
 */
export async function publishEncoded(bus: Bus, subject: string, payload: string, eventId: string, afterId?: string): Promise<PubAck> {
  return bus.js.publish(`${bus.prefix}${subject}`, payload, { msgID: eventId, timeout: 3_000, ...(afterId ? { expect: { lastMsgID: afterId } } : {}) });
}

/** The stream refused a message whose expected last message was not its last (another publisher came between). */
export const isWrongLastMessage = (err: unknown): boolean => (err as { code?: unknown })?.code === 10070;
