/** The only place the test harness reads the environment: which servers, which binaries. */
export const testEnv = {
  NATS_URL: process.env.NATS_URL || undefined,
  DATABASE_URL: process.env.DATABASE_URL || undefined,
  REDIS_URL: process.env.REDIS_URL || undefined,
  DOCKER_HOST: process.env.DOCKER_HOST || undefined,
  /** Use the machine's servers even where a Docker engine exists. */
  TEST_USE_LOCAL_SERVERS: !!process.env.TEST_USE_LOCAL_SERVERS,
  NATS_SERVER_BIN: process.env.NATS_SERVER_BIN || "nats-server",
  /** The vitest worker this file runs in (1, 2, ...): each hands out ports from its own slice (see freePort). */
  VITEST_POOL_ID: process.env.VITEST_POOL_ID ? Number(process.env.VITEST_POOL_ID) : undefined,
  /** Child processes get PATH and nothing else from us. */
  PATH: process.env.PATH ?? "",
} as const;
