import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { DependencyUnavailable } from "@mam/runtime/dependency.ts";
import type { Logger } from "@mam/runtime/logger.ts";

export interface Bus {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** Prefix of every subject and stream of this deployment (empty in production). */
  prefix: string;
  /** False while the client is disconnected and trying to reconnect. */
  connected: () => boolean;
}

/** Connects once at start; afterwards the client reconnects by itself for ever. */
export async function connectBus(opts: { url: string; prefix: string; name: string; logger: Logger }): Promise<Bus> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: opts.url.split(","),
      name: opts.name,
      timeout: 3_000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    });
  } catch (err) {
    throw new DependencyUnavailable("NATS", opts.url, err);
  }
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc, { timeout: 5_000 });
  } catch (err) {
    await nc.close();
    throw new DependencyUnavailable("NATS", opts.url, new Error(`JetStream is not enabled (${(err as Error).message}); run nats-server with -js`));
  }
  const link = { up: true };
  void watchStatus(nc, opts.logger, link);
  return { nc, js: jetstream(nc), jsm, prefix: opts.prefix, connected: () => link.up && !nc.isClosed() };
}

async function watchStatus(nc: NatsConnection, logger: Logger, link: { up: boolean }) {
  for await (const s of nc.status()) {
    if (s.type === "disconnect") link.up = false;
    if (s.type === "reconnect") link.up = true;
    if (s.type === "disconnect" || s.type === "reconnect" || s.type === "error") {
      logger.warn({ nats: s.type }, `NATS ${s.type}`);
    }
  }
}

/** Drains (lets in-flight replies go out), but never waits on it for more than a few seconds. */
export async function closeBus(bus: Bus): Promise<void> {
  if (bus.nc.isClosed()) return;
  const drained = bus.nc.drain().then(
    () => true,
    () => false,
  );
  const inTime = await Promise.race([drained, new Promise<boolean>((r) => setTimeout(() => r(false), 3_000).unref())]);
  if (!inTime && !bus.nc.isClosed()) await bus.nc.close();
}
