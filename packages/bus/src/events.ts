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
 * Publishes a run of messages pipelined (sent together, their PubAcks awaited together), yet
 * never stores a later one without the one before: the first of a round goes as it is
 * (everything before it is stored), each next one only if the one sent before it is the
 * stream's last message (`send`'s `afterId`, for `Nats-Expected-Last-Msg-Id`). Once a message
 * is not stored, none sent after it in its round is. When it was refused because another
 * publisher came between, the next round starts from it; any other failure is thrown, after
 * `stored` was told, in order, of every item stored before it. `send` returns nothing for an
 * item with nothing to publish: it counts as stored, and the chain links past it (`idOf` is
 * asked only of items sent).
 *
 * A round holds at most `window.items` items and, with `sizeOf`, `window.bytes` bytes (at
 * least one item; CHAIN_WINDOW unless given): each PubAck's timeout starts when its message is sent, so a large batch sent whole
 * (feed entries of up to a megabyte each) would have its tail time out behind its head on a
 * slow or replicated server. The next round starts once the one before is stored.
 */
export async function publishChained<T, A>(
  items: readonly T[],
  o: {
    send: (item: T, afterId: string | undefined) => Promise<A> | undefined;
    idOf: (item: T) => string;
    stored: (item: T, ack: A | undefined) => void;
    sizeOf?: (item: T) => number;
    window?: { items?: number; bytes?: number };
  },
): Promise<void> {
  for (let from = 0; from < items.length; ) {
    const round = items.slice(from, from + roundLength(items, from, o));
    let afterId: string | undefined;
    const results = await Promise.allSettled(
      round.map((item) => {
        let sent: Promise<A> | undefined;
        try {
          sent = o.send(item, afterId);
        } catch (err) {
          // As a failure of its own, so that what was sent before it is still awaited and told.
          sent = Promise.reject(err);
        }
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
    from += stored;
    if (stored === round.length) continue;
    const err = (results[stored] as PromiseRejectedResult).reason;
    if (stored === 0 || !isWrongLastMessage(err)) throw err;
  }
}

/** A round's limits unless told otherwise: a relay's whole claim (500 rows) goes in one. */
export const CHAIN_WINDOW = { items: 512, bytes: 8 * 1024 * 1024 };

/** How many items from `from` one round sends: within the window's items and bytes, and at least one. */
function roundLength<T>(items: readonly T[], from: number, o: { sizeOf?: (item: T) => number; window?: { items?: number; bytes?: number } }): number {
  const most = Math.min(items.length - from, Math.max(1, o.window?.items ?? CHAIN_WINDOW.items));
  if (!o.sizeOf) return most;
  const budget = o.window?.bytes ?? CHAIN_WINDOW.bytes;
  let bytes = 0;
  for (let n = 0; n < most; n++) {
    bytes += o.sizeOf(items[from + n]!);
    if (n > 0 && bytes > budget) return n;
  }
  return most;
}

/**
 * publishChained for items of several keys (a tenant's entries) whose order matters within a
 * key only: an item not stored holds back its key's later items, and the other keys' go on in
 * another round, until `maxHeld` keys are held (each costs a round) or NATS is disconnected
 * (nats.js would buffer the bytes until it reconnects). What was not stored is for the caller
 * to try again; the first failure is returned with the number of keys held.
 */
export async function publishChainedPerKey<T, A>(
  items: readonly T[],
  o: Parameters<typeof publishChained<T, A>>[1] & { keyOf: (item: T) => string; maxHeld: number; connected: () => boolean },
): Promise<{ failure?: unknown; held: number }> {
  const stored = new Set<T>();
  const held = new Set<string>();
  let failure: unknown;
  for (let left = items; left.length > 0 && held.size < o.maxHeld; ) {
    if (!o.connected()) {
      failure ??= new Error("NATS is disconnected");
      break;
    }
    try {
      await publishChained(left, {
        ...o,
        stored: (item, ack) => {
          stored.add(item);
          o.stored(item, ack);
        },
      });
      break;
    } catch (err) {
      failure ??= err;
      held.add(o.keyOf(left.find((item) => !stored.has(item))!));
      left = left.filter((item) => !stored.has(item) && !held.has(o.keyOf(item)));
    }
  }
  return { failure, held: held.size };
}
