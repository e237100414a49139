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

/**
 * Publishes a run of messages pipelined (their bytes leave together, their PubAcks come back
 * together), yet never stores a later one without the one before: the first of a round goes as
 * it is (everything before it is stored), each next one only if the one sent before it is the
 * stream's last message (`send`'s `afterId`, for `Nats-Expected-Last-Msg-Id`). A message that
 * fails makes every later one fail; when it was refused because another publisher came
 * between, the next round starts from it. Any other failure is thrown, after `stored` was told
 * of every message stored before it. `send` returns nothing for an item with nothing to
 * publish: it counts as stored, and the chain links past it.
 */
export async function publishChained<T, A>(
  items: readonly T[],
  o: {
    send: (item: T, afterId: string | undefined) => Promise<A> | undefined;
    idOf: (item: T) => string;
    stored: (item: T, ack: A | undefined) => void;
  },
): Promise<void> {
  for (let from = 0; from < items.length; ) {
    const round = items.slice(from);
    let afterId: string | undefined;
    const results = await Promise.allSettled(
      round.map((item) => {
        const sent = o.send(item, afterId);
        if (sent) afterId = o.idOf(item);
        return sent;
      }),
    );
    let stored = 0;
    for (const r of results) {
      if (r.status === "rejected") break;
      o.stored(round[stored]!, r.value);
      stored++;
    }
    if (stored === round.length) return;
    const err = (results[stored] as PromiseRejectedResult).reason;
    if (stored === 0 || !isWrongLastMessage(err)) throw err;
    from += stored;
  }
}
