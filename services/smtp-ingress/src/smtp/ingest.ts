import { createHash } from "node:crypto";
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { ObjectStore } from "@nats-io/obj";
import type { Bus } from "@mam/bus/connection.ts";
import { INGEST_META_HEADER, ingestSubject, type IngestMeta } from "@mam/contracts/ingest.ts";

/** The Message-ID of a raw message, read from its header block only. */
export function messageIdOf(raw: Buffer): string | null {
  const end = raw.indexOf("\r\n\r\n");
  const head = raw.subarray(0, end === -1 ? Math.min(raw.length, 65_536) : end).toString("latin1");
  const m = /^message-id:[ \t]*(<[^>\r\n]{1,250}>)/im.exec(head);
  return m?.[1] ?? null;
}

/**
 * The same message to the same recipients is the same delivery: a client resending after a
 * lost 250 gets the first one back, not a second copy.
 */
export function dedupeKeyOf(raw: Buffer, recipients: string[]): string {
  const id = messageIdOf(raw) ?? createHash("sha256").update(raw).digest("hex");
  return createHash("sha256")
    .update(`${id}\u0000${[...recipients].sort().join(",")}`)
    .digest("hex");
}

/**
 * Records accepted mail durably: the PubAck means JetStream stored it. Only after this
 * resolves may the server answer 250.
 */
export async function publishIngest(bus: Bus, store: () => Promise<ObjectStore>, meta: Omit<IngestMeta, "rawObject">, raw: Buffer, inlineLimit: number) {
  let rawObject: string | null = null;
  let payload = raw;
  if (raw.length > inlineLimit) {
    rawObject = meta.dedupeKey;
    await (await store()).putBlob({ name: rawObject }, raw);
    payload = Buffer.alloc(0);
  }
  const h = natsHeaders();
  h.set(INGEST_META_HEADER, JSON.stringify({ ...meta, rawObject }));
  return bus.js.publish(ingestSubject(bus.prefix), payload, { msgID: meta.dedupeKey, headers: h, timeout: 5_000 });
}
