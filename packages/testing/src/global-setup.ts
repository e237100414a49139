import { existsSync } from "node:fs";
import type { TestProject } from "vitest/node";
import { testEnv } from "./config.ts";

/**
 * Starts throwaway NATS (JetStream), Postgres and Redis containers only when the run was
 * given no server URL and a Docker engine is there. On our machines the servers already
 * run, so this does nothing and tests use them.
 */
export async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = !!(testEnv.NATS_URL || testEnv.DATABASE_URL || testEnv.REDIS_URL);
  const docker = testEnv.DOCKER_HOST || existsSync("/var/run/docker.sock");
  if (given || !docker || testEnv.TEST_USE_LOCAL_SERVERS) return async () => undefined;

  const { GenericContainer, Wait } = await import("testcontainers");
  const { PostgreSqlContainer } = await import("@testcontainers/postgresql");
  const { RedisContainer } = await import("@testcontainers/redis");
  const [nats, postgres, redis] = await Promise.all([
    new GenericContainer("nats:2.9-alpine")
      .withCommand(["-js", "-sd", "/data"])
      .withExposedPorts(4222)
      .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
      .start(),
    new PostgreSqlContainer("postgres:15-alpine").withUsername("postgres").withPassword("postgres").start(),
    new RedisContainer("redis:7-alpine").start(),
  ]);
  project.provide("servers", {
    NATS_URL: `nats://${nats.getHost()}:${nats.getMappedPort(4222)}`,
    DATABASE_URL: postgres.getConnectionUri(),
    REDIS_URL: redis.getConnectionUrl(),
  });
  return async () => {
    await Promise.all([nats.stop(), postgres.stop(), redis.stop()]);
  };
}
