import { createHash } from "node:crypto";
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { PubAck } from "@nats-io/jetstream";
import type { ObjectStore } from "@nats-io/obj";
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import type { Bus } from "@mam/bus/connection.ts";
import { openObjectStore } from "@mam/bus/object-store.ts";
import { INGEST_META_HEADER, ingestBucketName, ingestSubject, type IngestMeta } from "@mam/contracts/ingest.ts";
import type { Logger } from "@mam/runtime/logger.ts";

/** How long a raw message waits in the object store for the mailbox (the mailbox opens the bucket with the same). */
export const INGEST_RAW_TTL_MS = 7 * 86_400_000;

/**
 * The bucket of raw messages too large to travel inline. Whichever of smtp-ingress and the
 * mailbox makes it first, it gets the TTL: an upload nobody reads does not stay for ever.
 */
export const openRawStore = (nc: NatsConnection, prefix: string, replicas = 1, logger?: Logger): Promise<ObjectStore> =>
  openObjectStore(nc, ingestBucketName(prefix), { ttl: nanos(INGEST_RAW_TTL_MS) }, replicas, logger);

export interface Delivery {
  /** The reverse-path as given in MAIL FROM, "" for the null reverse-path. */
  mailFrom: string;
  recipients: string[];
  returnPaths: string[];
  /** SHA-256 of the message bytes as the client sent them (without our Received header). */
  contentHash: string;
}

/**
 * The same bytes from the same sender to the same recipients are the same delivery: a client
 * resending after a lost 250 gets the first one back, not a second copy. Everything a sender
 * controls is in it, so knowing another message's Message-ID is not enough to have the
 * genuine message dropped as a duplicate of a forgery.
 */
export function dedupeKeyOf(d: Delivery): string {
  const list = (xs: string[]) => [...new Set(xs.map((x) => x.toLowerCase()))].sort();
  // JSON: no field can spill into the next, whatever characters an address holds.
  return createHash("sha256")
    .update(JSON.stringify(["smtp/2", d.mailFrom, list(d.recipients), list(d.returnPaths), d.contentHash]))
    .digest("hex");
}

export interface RawMessage {
  /** Our Received header, put in front of the client's bytes. */
  head: Buffer;
  /** Taken out of this array as they are used, so that nothing keeps them once copied. */
  chunks: Buffer[];
  /** Of the head and the chunks together. */
  size: number;
}

/**
 * Records accepted mail durably: the PubAck means JetStream stored it. Only after this
 * resolves may the server answer 250. A large message goes to the object store first, under
 * its queue id: no other upload can replace it before the mailbox reads it. When JetStream
 * says the publish was a duplicate, the stored message refers to the first upload, so this
 * one is deleted.
 */
export async function publishIngest(
  bus: Bus,
  store: () => Promise<ObjectStore>,
  meta: Omit<IngestMeta, "rawObject">,
  raw: RawMessage,
  inlineLimit: number,
  logger: Logger,
): Promise<PubAck> {
  let rawObject: string | null = null;
  let payload: Buffer;
  if (raw.size > inlineLimit) {
    rawObject = meta.queueId;
    await (await store()).put({ name: rawObject }, streamOf([raw.head, ...raw.chunks.splice(0)]));
    payload = Buffer.alloc(0);
  } else {
    payload = joined(raw);
  }
  const h = natsHeaders();
  h.set(INGEST_META_HEADER, JSON.stringify({ ...meta, rawObject }));
  const ack = await bus.js.publish(ingestSubject(bus.prefix), payload, { msgID: meta.dedupeKey, headers: h, timeout: 5_000 });
  if (ack.duplicate && rawObject) {
    const name = rawObject;
    // Not awaited: the reply need not wait; the bucket's TTL removes it should this fail.
    void store()
      .then((s) => s.delete(name))
      .catch((err: unknown) => logger.warn({ err: (err as Error).message, queueId: meta.queueId }, "could not delete the upload of a duplicate"));
  }
  return ack;
}

/** The one copy of an inline message: the chunks are let go, only the payload stays while it is published. */
function joined(raw: RawMessage): Buffer {
  return Buffer.concat([raw.head, ...raw.chunks.splice(0)], raw.size);
}

/** The parts in order, each let go once handed over. */
function streamOf(parts: Buffer[]): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = parts.shift();
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });
}
