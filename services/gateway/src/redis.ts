import { Redis } from "ioredis";
import { DependencyUnavailable } from "@mam/runtime/dependency.ts";
import type { Logger } from "@mam/runtime/logger.ts";

/**
 * No offline queue and one retry per command: during a Redis outage calls fail fast
 * instead of piling up in memory, and the rate limiter decides what that means.
 */
export async function connectRedis(url: string, logger: Logger): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 3_000,
    commandTimeout: 1_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
  // While Redis is away every reconnect attempt fails: one line when it goes, one when it is back.
  let down = false;
  redis.on("error", (err) => {
    if (redis.status === "ready") return logger.warn({ err: err.message }, "Redis error");
    if (down) return;
    down = true;
    logger.warn({ err: err.message }, "Redis unreachable; retrying quietly until it answers");
  });
  redis.on("ready", () => {
    if (!down) return;
    down = false;
    logger.info("Redis reachable again");
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new DependencyUnavailable("Redis", url, err);
  }
  return redis;
}
