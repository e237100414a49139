import type { Logger } from "pino";
import { ConfigError } from "./config.ts";
import { DependencyUnavailable } from "./dependency.ts";

/** The shape of every service: built by `create`, then started, then destroyed exactly once. */
export interface Service {
  start(): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * Process glue shared by every main.ts: start, stop on SIGTERM/SIGINT/SIGHUP within a bound,
 * and turn a missing server or bad setting into one clear line instead of a stack trace.
 */
export async function runMain(name: string, build: () => Promise<{ service: Service; logger: Logger; shutdownTimeoutMs: number }>): Promise<void> {
  let built: Awaited<ReturnType<typeof build>> | undefined;
  // Listening from the first moment: a stop asked for while the service starts is carried out
  // once it has started (Node's default would end the process mid-start), and a start that
  // hangs does not make the process deaf to it: it ends within the shutdown bound regardless.
  let asked: string | undefined;
  let stop = (signal: string) => {
    if (asked) return;
    asked = signal;
    setTimeout(() => process.exit(1), built?.shutdownTimeoutMs ?? 10_000).unref();
  };
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.once(signal, () => stop(signal));
  try {
    built = await build();
    await built.service.start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { port?: number };
    if (err instanceof DependencyUnavailable || err instanceof ConfigError) {
      process.stderr.write(`${name}: ${err.message}\n`);
    } else if (e?.code === "EADDRINUSE") {
      process.stderr.write(`${name}: port ${e.port} is already in use; set PORT (gateway) or HEALTH_PORT to another\n`);
    } else {
      process.stderr.write(`${name}: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
    process.exitCode = 1;
    // Whatever was half-opened must not keep the process alive.
    setTimeout(() => process.exit(1), 2_000).unref();
    return;
  }
  const { service, logger, shutdownTimeoutMs } = built;
  let stopping = false;
  stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    const force = setTimeout(() => {
      logger.error({ shutdownTimeoutMs }, "shutdown timed out; exiting");
      process.exit(1);
    }, shutdownTimeoutMs);
    force.unref();
    service.destroy().then(
      () => {
        logger.info("stopped");
        logger.flush();
      },
      (err: unknown) => {
        logger.error({ err }, "error during shutdown");
        process.exitCode = 1;
      },
    );
  };
  // SIGHUP (its terminal closed) is a drain like any other stop, not Node's default of dying mid-work.
  if (asked) stop(asked);
}
