import { randomUUID } from "node:crypto";
import { StorageType, type ObjectStore } from "@nats-io/obj";
import { headers as natsHeaders, nanos, type MsgHdrs } from "@nats-io/transport-node";
import { z } from "zod";
import { AppError } from "@mam/contracts/errors.ts";
import { Headers } from "@mam/contracts/scope.ts";
import { rpcReplyBucketName } from "@mam/contracts/subjects.ts";
import type { Bus } from "./connection.ts";
import { openObjectStore } from "./object-store.ts";

/**
 * Requests and replies larger than this (a send with attachments, a page of long messages)
 * do not fit one NATS message: they wait in an object-store bucket, and the message
 * carries only their name, in a header.
 */
export const INLINE_BYTES = 768 * 1024;
const SpillName = z.string().uuid();

const buckets = new WeakMap<Bus, Promise<ObjectStore>>();
/**
 * The bucket of large requests and replies: on disk, bounded (2 GiB), and each one expires
 * after two minutes, so one whose reader gave up does not linger. The gateway bounds how
 * many large requests are in flight, so one client cannot fill it.
 */
function spillBucket(bus: Bus): Promise<ObjectStore> {
  let b = buckets.get(bus);
  if (!b) {
    const opts = { storage: StorageType.File, ttl: nanos(120_000), max_bytes: 2 * 1024 * 1024 * 1024 };
    b = openObjectStore(bus.nc, rpcReplyBucketName(bus.prefix), opts, bus.replicas, bus.logger);
    b.catch(() => buckets.delete(bus));
    buckets.set(bus, b);
  }
  return b;
}

/** Puts bytes too large for one message into the bucket; returns the headers that name them. */
export async function spill(bus: Bus, data: Uint8Array): Promise<MsgHdrs> {
  const name = randomUUID();
  await (await spillBucket(bus)).putBlob({ name }, data);
  const h = natsHeaders();
  h.set(Headers.spilled, name);
  return h;
}

/** Takes spilled bytes out of the bucket (each is read once). */
export async function unspill(bus: Bus, name: string): Promise<Uint8Array> {
  if (!SpillName.safeParse(name).success) throw new AppError("VALIDATION_ERROR", "Malformed spilled-message name");
  let data: Uint8Array | null;
  try {
    const store = await spillBucket(bus);
    data = await store.getBlob(name);
    void store.delete(name).catch(() => undefined);
  } catch {
    throw new AppError("UNAVAILABLE", "A large message could not be read from the message bus; retry shortly");
  }
  if (!data) throw new AppError("UNAVAILABLE", "A large message expired before it was read; retry");
  return data;
}

/** Drops spilled bytes nobody will read (no service answered the request that carried them), in the background. */
export function discardSpilled(bus: Bus, name: string | undefined): void {
  if (!name) return;
  void spillBucket(bus)
    .then((b) => b.delete(name))
    .catch(() => undefined);
}
