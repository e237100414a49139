import { DiscardPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { allEventsSubject } from "@mam/contracts/envelope.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { ingestStreamName, ingestSubject } from "@mam/contracts/ingest.ts";
import type { Bus } from "./connection.ts";

/** Window inside which a republished event (same id) is stored only once. */
export const DUPLICATE_WINDOW_MS = 2 * 60_000;

/**
 * The event stream is the source of truth: file storage, kept for ever, never discarding
 * new events. Declared here as code; every service ensures it at start (idempotent).
 */
export async function ensureEventsStream(bus: Bus): Promise<string> {
  const name = eventsStreamName(bus.prefix);
  const config = {
    name,
    subjects: [allEventsSubject(bus.prefix)],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_msgs: -1,
    max_bytes: -1,
    max_age: 0,
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    num_replicas: 1,
  };
  try {
    await bus.jsm.streams.info(name);
  } catch {
    try {
      await bus.jsm.streams.add(config);
    } catch (err) {
      // Another process created it between our two calls.
      await bus.jsm.streams.info(name).catch(() => {
        throw err;
      });
    }
  }
  return name;
}

/**
 * Inbound mail accepted by SMTP and not yet filed into inboxes. Work-queue retention: a
 * message leaves the stream once the mailbox has acknowledged it. The duplicate window
 * makes a client's resend after a lost 250 a no-op.
 */
export async function ensureIngestStream(bus: Bus, duplicateWindowMs = 10 * 60_000): Promise<string> {
  const name = ingestStreamName(bus.prefix);
  try {
    await bus.jsm.streams.info(name);
  } catch {
    try {
      await bus.jsm.streams.add({
        name,
        subjects: [ingestSubject(bus.prefix)],
        storage: StorageType.File,
        retention: RetentionPolicy.Workqueue,
        discard: DiscardPolicy.New,
        max_msg_size: -1,
        duplicate_window: nanos(duplicateWindowMs),
        num_replicas: 1,
      });
    } catch (err) {
      await bus.jsm.streams.info(name).catch(() => {
        throw err;
      });
    }
  }
  return name;
}
