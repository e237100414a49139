import { DiscardPolicy, RetentionPolicy, StorageType, type StreamConfig, type StreamInfo } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { allEventsSubject } from "@mam/contracts/envelope.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { allFeedSubjects, feedStreamName } from "@mam/contracts/realtime-feed.ts";
import { ingestStreamName, ingestSubject } from "@mam/contracts/ingest.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { isPermissionError, type Bus } from "./connection.ts";
import { checkReplicas, declarePatiently, isStreamNotFound, matchReplicas, replicasRefused } from "./replicas.ts";

/** Window inside which a republished event (same id) is stored only once. */
export const DUPLICATE_WINDOW_MS = 2 * 60_000;

/**
 * The event stream is the source of truth: file storage, kept for ever, never discarding
 * new events. Declared here as code; every service ensures it at start (idempotent; on a
 * locked-down server only identity and the mailbox, its writers, may create it).
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
    num_replicas: bus.replicas,
  };
  await ensureStream(bus, config);
  return name;
}

/**
 * The public feed realtime renders (one entry per public event, for WebSocket clients and
 * webhooks). Not the source of truth: entries older than the retention window are dropped,
 * and the window is how far back a WebSocket client may resume. A changed window is applied
 * to the existing stream.
 */
export async function ensureFeedStream(bus: Bus, retentionS: number, duplicateWindowMs = DUPLICATE_WINDOW_MS): Promise<string> {
  const name = feedStreamName(bus.prefix);
  const config = {
    name,
    subjects: [allFeedSubjects(bus.prefix)],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_msgs: -1,
    max_bytes: -1,
    max_age: nanos(retentionS * 1000),
    duplicate_window: nanos(Math.min(duplicateWindowMs, retentionS * 1000)),
    num_replicas: bus.replicas,
  };
  await ensureStream(bus, config);
  const info = await bus.jsm.streams.info(name);
  if (info.config.max_age !== config.max_age)
    await bus.jsm.streams.update(name, { ...info.config, max_age: config.max_age, duplicate_window: config.duplicate_window });
  return name;
}

/**
 * Inbound mail accepted by SMTP and not yet filed into inboxes. Work-queue retention: a
 * message leaves the stream once the mailbox has acknowledged it. The duplicate window
 * makes a client's resend after a lost 250 a no-op.
 */
export async function ensureIngestStream(bus: Bus, duplicateWindowMs = 10 * 60_000): Promise<string> {
  const name = ingestStreamName(bus.prefix);
  await ensureStream(bus, {
    name,
    subjects: [ingestSubject(bus.prefix)],
    storage: StorageType.File,
    retention: RetentionPolicy.Workqueue,
    discard: DiscardPolicy.New,
    max_msg_size: -1,
    duplicate_window: nanos(duplicateWindowMs),
    num_replicas: bus.replicas,
  });
  return name;
}

/** How long a service that may not create a stream waits for one that may. */
export const STREAM_WAIT_MS = 5 * 60_000;

/**
 * Declares a stream unless it exists, and gives an existing one the configured number of
 * copies (NATS_REPLICAS). On a locked-down server only a stream's writers may create it (a
 * reader that could would also choose its limits): a service refused the creation waits for
 * a writer to start, and says so once.
 */
async function ensureStream(bus: Bus, config: Partial<StreamConfig> & { name: string }, waitMs = STREAM_WAIT_MS): Promise<void> {
  checkReplicas(bus.nc, bus.replicas);
  // Only "not found" says it is not there (a permission refusal too: a locked-down reader waits
  // below); a timeout or a cluster busy with the stream is thrown, for declarePatiently.
  const lookUp = () =>
    bus.jsm.streams.info(config.name).catch((err: unknown) => {
      if (isStreamNotFound(err) || isPermissionError(err)) return undefined;
      throw err;
    });
  /** An existing stream given the copies asked for (from the look-up's answer, not another); false when there is none. */
  const matched = async (info: StreamInfo | undefined): Promise<boolean> => {
    if (!info) return false;
    await matchReplicas(bus.jsm, config.name, bus.replicas, bus.logger, info);
    return true;
  };
  /** true when declared (created or matched), false when this service may not create it. */
  const declare = async (): Promise<boolean> => {
    if (await matched(await lookUp())) return true;
    try {
      await bus.jsm.streams.add(config);
      return true;
    } catch (err) {
      if (isPermissionError(err)) return false;
      // Another process created it between our two calls.
      if (await matched(await lookUp())) return true;
      throw replicasRefused(err, bus.replicas);
    }
  };
  if (await declarePatiently(`the ${config.name} stream`, declare, bus.logger)) return;
  bus.logger.warn({ stream: config.name }, `waiting for the ${config.name} stream: this service may not create it, the services that write to it do`);
  await waitFor(
    () =>
      lookUp().then(
        (info) => info !== undefined,
        () => false,
      ),
    {
      timeoutMs: waitMs,
      intervalMs: 500,
      what: `the ${config.name} stream (created by the services that write to it)`,
    },
  );
}
