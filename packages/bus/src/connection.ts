import { readFile } from "node:fs/promises";
import { AuthorizationError, connect, PermissionViolationError, TimeoutError, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { ConfigError } from "@mam/runtime/config.ts";
import { DependencyUnavailable, redactUrl } from "@mam/runtime/dependency.ts";
import type { Logger } from "@mam/runtime/logger.ts";

export interface Bus {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** Prefix of every subject and stream of this deployment (empty in production). */
  prefix: string;
  /** Copies of each stream and bucket this deployment creates (NATS_REPLICAS). */
  replicas: number;
  /** False while the client is disconnected and trying to reconnect. */
  connected: () => boolean;
  logger: Logger;
}

export interface BusOptions {
  /** One or more servers, comma separated; `nats://user:pass@host:4222` carries credentials too. */
  url: string;
  prefix: string;
  /** The service's name: its connection name and the prefix of its reply inboxes. */
  name: string;
  logger: Logger;
  /** This service's NATS user and password (a locked-down server gives each service its own). */
  user?: string;
  password?: string;
  /** Without `password`: the file that holds it (NATS_PASSWORD_FILE), read once here. */
  passwordFile?: string;
  /** NATS_REPLICAS (default 1). */
  replicas?: number;
}

/** Reply inboxes of a service: a locked-down server lets only that service read them. */
export const inboxPrefixOf = (service: string) => `_INBOX_${service.replace(/[^A-Za-z0-9_-]/g, "_")}`;

/** The servers without their credentials, and the credentials (from the options first, else the URL). */
export function serversAndCredentials(url: string, user?: string, password?: string): { servers: string[]; user?: string; pass?: string } {
  let fromUrl: { user?: string; pass?: string } = {};
  const servers = url.split(",").map((raw) => {
    const server = raw.trim();
    const at = server.lastIndexOf("@");
    if (at < 0) return server;
    const scheme = server.indexOf("://");
    const userinfo = server.slice(scheme < 0 ? 0 : scheme + 3, at);
    const colon = userinfo.indexOf(":");
    const u = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon));
    const p = colon < 0 ? undefined : decodeURIComponent(userinfo.slice(colon + 1));
    if (!fromUrl.user) fromUrl = { user: u, pass: p };
    return `${scheme < 0 ? "" : server.slice(0, scheme + 3)}${server.slice(at + 1)}`;
  });
  if (user) return { servers, user, pass: password };
  return { servers, ...fromUrl };
}

let warnedUnauthenticated = false;

/**
 * How long a JetStream API request (declaring or updating a stream, a bucket, a consumer) may
 * take. On a cluster each is a round of consensus, and several replicas starting at once
 * queue behind one another: 5 s (the client's default) was seen to run out on a loaded machine.
 */
export const JS_API_TIMEOUT_MS = 10_000;

/** Connects once at start; afterwards the client reconnects by itself for ever. */
export async function connectBus(opts: BusOptions): Promise<Bus> {
  const password = opts.password || (opts.passwordFile ? await readPasswordFile(opts.passwordFile) : undefined);
  const { servers, user, pass } = serversAndCredentials(opts.url, opts.user, password);
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      name: opts.name,
      ...(user ? { user, pass } : {}),
      inboxPrefix: inboxPrefixOf(opts.name),
      timeout: 3_000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      // By default every request (each JetStream publish waits for its PubAck through one)
      // builds two Error objects up front for their stack traces: a measurable share of a
      // service's CPU under load, for traces our errors never show.
      noAsyncTraces: true,
    });
  } catch (err) {
    if (isAuthorizationError(err)) {
      throw new ConfigError(
        `NATS at ${redactUrl(servers.join(","))} refused ${user ? `the credentials of user "${user}"` : "a connection without credentials"}; set NATS_USER and NATS_PASSWORD or NATS_PASSWORD_FILE (or nats://user:password@host:4222 in NATS_URL)`,
      );
    }
    throw new DependencyUnavailable("NATS", opts.url, err);
  }
  if (!nc.info?.auth_required && !warnedUnauthenticated) {
    // Fine on a developer's machine; in production anyone who reaches NATS could act as any service.
    warnedUnauthenticated = true;
    opts.logger.warn(
      { nats: servers.join(",") },
      "NATS accepts unauthenticated connections: any process that reaches it can act as any service (see infra/nats/nats.conf)",
    );
  }
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc, { timeout: JS_API_TIMEOUT_MS });
  } catch (err) {
    await nc.close();
    if (isPermissionError(err)) throw new ConfigError(`NATS user "${user}" may not use the JetStream API ($JS.API.INFO); see infra/nats/nats.conf`);
    throw new DependencyUnavailable("NATS", opts.url, new Error(`JetStream is not enabled (${(err as Error).message}); run nats-server with -js`));
  }
  const link = { up: true };
  void watchStatus(nc, opts.logger, link);
  return { nc, js: jetstream(nc), jsm, prefix: opts.prefix, replicas: opts.replicas ?? 1, connected: () => link.up && !nc.isClosed(), logger: opts.logger };
}

/** The password in NATS_PASSWORD_FILE: a missing or empty file stops the service with its name. */
export async function readPasswordFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ConfigError(`NATS_PASSWORD_FILE ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const password = text.trim();
  if (!password) throw new ConfigError(`NATS_PASSWORD_FILE ${path} is empty`);
  return password;
}

const isAuthorizationError = (err: unknown) => err instanceof AuthorizationError || /authorization violation/i.test((err as Error)?.message ?? "");
/** The server refused a subject to this user (a publish, a subscription, a JetStream API request). */
export const isPermissionError = (err: unknown): boolean =>
  err instanceof PermissionViolationError ||
  /permissions violation/i.test((err as Error)?.message ?? "") ||
  (!!(err as Error)?.cause && isPermissionError((err as Error).cause));

/** A request the server did not answer within its timeout (the client's TimeoutError, possibly as a cause). */
export const isTimeout = (err: unknown): boolean =>
  err instanceof TimeoutError || (err as Error)?.name === "TimeoutError" || (!!(err as Error)?.cause && isTimeout((err as Error).cause));

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
