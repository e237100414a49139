import { closeBus, connectBus, type Bus } from "@mam/bus/connection.ts";
import { request } from "@mam/bus/rpc-client.ts";
import { BaseEnv, ConfigError, parseEnv } from "@mam/runtime/config.ts";
import { DependencyUnavailable } from "@mam/runtime/dependency.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { CliError, requireKey, type Globals } from "./context.ts";

/** The NATS settings the services take (NATS_URL, NATS_PREFIX, NATS_USER, NATS_PASSWORD or NATS_PASSWORD_FILE). */
const NatsEnv = BaseEnv.pick({ NATS_URL: true, NATS_PREFIX: true, NATS_USER: true, NATS_PASSWORD: true, NATS_PASSWORD_FILE: true });

/**
 * The connection's name, and so its reply inboxes (`_INBOX_admin.>`): on a locked-down server
 * the operator connects as the admin user, and the services answer there.
 */
export const CLI_CONNECTION = "admin";

/** Runs `fn` with a NATS connection, closed after. */
export async function withBus<T>(fn: (bus: Bus) => Promise<T>): Promise<T> {
  let env: ReturnType<typeof NatsEnv.parse>;
  let bus: Bus;
  try {
    env = parseEnv(NatsEnv, process.env);
    // Warnings (an unauthenticated server) would mix with the command's output: errors only, on stderr.
    const logger = createLogger("mam", process.env.LOG_LEVEL ?? "error", process.stderr);
    bus = await connectBus({
      url: env.NATS_URL,
      prefix: env.NATS_PREFIX,
      name: CLI_CONNECTION,
      logger,
      user: env.NATS_USER,
      password: env.NATS_PASSWORD,
      passwordFile: env.NATS_PASSWORD_FILE,
    });
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, "CONFIG");
    if (err instanceof DependencyUnavailable) throw new CliError(err.message, "UNAVAILABLE");
    throw err;
  }
  try {
    return await fn(bus);
  } finally {
    await closeBus(bus);
  }
}

/** An operator request over NATS (see packages/service-kit/src/operator-rpc.ts): the key goes with it. */
export async function operatorRequest<T = any>(g: Globals, bus: Bus, subject: string, body: Record<string, unknown>, timeoutMs = 10_000): Promise<T> {
  const reply = await request(bus, subject, { ...body, operatorKey: requireKey(g) }, { timeoutMs });
  if (!reply.ok) throw new CliError(reply.error.error, reply.error.code);
  return reply.body as T;
}
