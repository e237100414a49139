import { type JetStreamManager, JetStreamApiCodes, JetStreamApiError, type StreamInfo } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { setTimeout as sleep } from "node:timers/promises";
import { ConfigError } from "@mam/runtime/config.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import { isPermissionError, isTimeout } from "./connection.ts";

/**
 * More than one copy needs a JetStream cluster. Refused before anything is created, with the
 * setting's name: an operator asking for R3 must not run on one copy believing in three.
 */
export function checkReplicas(nc: NatsConnection, replicas: number): void {
  if (replicas <= 1 || nc.info?.cluster) return;
  throw new ConfigError(
    `NATS_REPLICAS=${replicas} needs a JetStream cluster of at least ${replicas} servers, but NATS at ${nc.getServer()} is a single server; set NATS_REPLICAS=1 or run a cluster (docs/durability.md)`,
  );
}

/** The server's refusal of a replica count (too few servers in the cluster) as a ConfigError naming the setting. */
export function replicasRefused(err: unknown, replicas: number): Error {
  const message = (err as Error)?.message ?? String(err);
  if (replicas > 1 && /replicas|insufficient resources|no suitable peers/i.test(message))
    return new ConfigError(`NATS_REPLICAS=${replicas}: the JetStream cluster refused ${replicas} copies (${message}); it needs at least ${replicas} servers`);
  return err as Error;
}

/**
 * Gives an existing stream (a KV or object-store bucket is one too: KV_<name>, OBJ_<name>) the
 * configured number of copies when it has fewer, so raising NATS_REPLICAS and restarting
 * applies it. A service the server does not let change the stream (a locked-down server lets
 * only its writers) says so and goes on with what there is.
 */
export async function matchReplicas(jsm: JetStreamManager, name: string, replicas: number, logger?: Logger, known?: StreamInfo): Promise<void> {
  const info = known ?? (await jsm.streams.info(name));
  if (info.config.num_replicas === replicas) return;
  if (info.config.num_replicas > replicas) {
    // Never lowered at start: one process started without the setting (its default is 1), or
    // an old one during a rollout, would take every other service's copies away.
    logger?.warn(
      { stream: name, replicas: info.config.num_replicas, wanted: replicas },
      `stream ${name} is kept in ${info.config.num_replicas} copies, more than NATS_REPLICAS=${replicas}: left so (to lower it: nats stream edit ${name} --replicas ${replicas})`,
    );
    return;
  }
  try {
    await jsm.streams.update(name, { ...info.config, num_replicas: replicas });
    logger?.info({ stream: name, from: info.config.num_replicas, to: replicas }, `stream ${name} now kept in ${replicas} copies (NATS_REPLICAS)`);
  } catch (err) {
    if (!isPermissionError(err)) {
      // Replicas starting together all ask for the change: the server applies one and lets
      // the others' requests time out meanwhile. The stream having the count is what counts.
      if ((await jsm.streams.info(name).catch(() => undefined))?.config.num_replicas === replicas) return;
      throw replicasRefused(err, replicas);
    }
    logger?.warn(
      { stream: name, replicas: info.config.num_replicas, wanted: replicas },
      `stream ${name} has ${info.config.num_replicas} replicas, NATS_REPLICAS says ${replicas}, and this service may not change it (nats stream edit ${name} --replicas ${replicas})`,
    );
  }
}

/** JetStream API answers a declaration may get while other processes change the same stream (JetStreamApiCodes lists none of these). */
const STREAM_NAME_IN_USE = 10058;
const SUBJECTS_OVERLAP = 10065;

/**
 * What a declaration at start may meet while a cluster changes the stream under it, and
 * should ask again: no answer in time, JetStream unavailable for a moment (503, a leader
 * being elected), or a creation refused because the stream exists while it could not be
 * looked up (its name in use, its subjects taken).
 */
export const isPassing = (err: unknown): boolean =>
  isTimeout(err) || (err instanceof JetStreamApiError && (err.status === 503 || err.code === STREAM_NAME_IN_USE || err.code === SUBJECTS_OVERLAP));

/** The stream (or bucket's stream) does not exist. */
export const isStreamNotFound = (err: unknown): boolean => err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;

/** How long a starting service keeps asking for a stream or bucket whose declaration times out. */
export const DECLARE_PATIENCE_MS = 60_000;

/**
 * Runs a declaration made at start (a stream or bucket created or given its copies) again
 * when the server does not answer in time or refuses it for a passing reason (isPassing),
 * until `patienceMs`. On a cluster every change is a
 * round of consensus: replicas starting together queue behind one another, and on a loaded
 * machine one request outlasts JS_API_TIMEOUT_MS while the change is still on its way, which
 * stopped the service. Every declaration is idempotent (create if absent, else match), so
 * asking again is safe; any other error, and the last timeout, go to the caller.
 */
export async function declarePatiently<T>(what: string, declare: () => Promise<T>, logger?: Logger, patienceMs = DECLARE_PATIENCE_MS): Promise<T> {
  const deadline = Date.now() + patienceMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await declare();
    } catch (err) {
      if (!isPassing(err) || Date.now() >= deadline) throw err;
      logger?.warn(
        { what, attempt, err: (err as Error).message },
        `the declaration of ${what} met a passing refusal (${(err as Error).message}); asking again`,
      );
      await sleep(Math.min(250 * 2 ** (attempt - 1), 2_000, Math.max(0, deadline - Date.now())));
    }
  }
}
