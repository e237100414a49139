import { closeBus, connectBus, type Bus } from "@mam/bus/connection.ts";
import { request } from "@mam/bus/rpc-client.ts";
import { DependencyUnavailable } from "@mam/runtime/dependency.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { loadCliConfig, type CliConfig } from "./config.ts";
import { CliError, requireKey, type Globals } from "./context.ts";

/**
 * The connection's name, and so its reply inboxes (`_INBOX_admin.>`): on a locked-down server
 * the operator connects as the admin user, and the services answer there.
 */
export const CLI_CONNECTION = "admin";

/**
 * Runs `fn` with a NATS connection, closed after: the services' own NATS settings (NATS_URL,
 * NATS_PREFIX, NATS_USER, NATS_PASSWORD or NATS_PASSWORD_FILE), logging to stderr.
 */
export async function withBus<T>(fn: (bus: Bus) => Promise<T>): Promise<T> {
  let env: CliConfig;
  let bus: Bus;
  try {
    env = loadCliConfig();
    const logger = createLogger("mam", env.LOG_LEVEL, process.stderr);
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
