import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Objm, type ObjectStore, type ObjectStoreOptions } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "@mam/runtime/logger.ts";
import { JS_API_TIMEOUT_MS } from "./connection.ts";
import { checkReplicas, declarePatiently, matchReplicas, replicasRefused } from "./replicas.ts";

/**
 * Opens (creating if absent) an object-store bucket kept in `replicas` copies (NATS_REPLICAS).
 * The client leaves an existing bucket's stream as it is, so a changed count is applied to
 * OBJ_<name> here.
 */
export async function openObjectStore(
  nc: NatsConnection,
  name: string,
  opts: Partial<ObjectStoreOptions>,
  replicas: number,
  logger?: Logger,
): Promise<ObjectStore> {
  checkReplicas(nc, replicas);
  return declarePatiently(
    `the ${name} bucket`,
    async () => {
      const store = await new Objm(jetstream(nc, { timeout: JS_API_TIMEOUT_MS })).create(name, { ...opts, replicas }).catch((err: unknown) => {
        throw replicasRefused(err, replicas);
      });
      await matchReplicas(await jetstreamManager(nc, { checkAPI: false, timeout: JS_API_TIMEOUT_MS }), `OBJ_${name}`, replicas, logger);
      return store;
    },
    logger,
  );
}
