import type { PubAck } from "@nats-io/jetstream";
import { eventSubject, type EventEnvelope } from "@mam/contracts/envelope.ts";
import type { Bus } from "./connection.ts";

/**
 * Appends one event durably. The event id is the `Nats-Msg-Id`, so a retried append of
 * the same event inside the duplicate window is stored once (`ack.duplicate`).
 */
export async function appendEvent(bus: Bus, event: EventEnvelope): Promise<PubAck> {
  return bus.js.publish(eventSubject(bus.prefix, event), JSON.stringify(event), {
    msgID: event.id,
    timeout: 3_000,
  });
}
