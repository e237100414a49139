import type { Server } from "node:http";
import type { Migration } from "kysely";
import { closeBus, connectBus, type Bus } from "@mam/bus/connection.ts";
import { timeRpc } from "@mam/bus/rpc-timing.ts";
import { ensureEventsStream } from "@mam/bus/streams.ts";
import { openDatabase, type Database } from "@mam/db/database.ts";
import { ConfigError, type BaseConfig } from "@mam/runtime/config.ts";
import { boundPort, closeServer, startHealthServer } from "@mam/runtime/health.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import { metricsOf, type ServiceMetrics, type Source } from "@mam/runtime/metrics.ts";
import { loadPublicKey, ScopeKeyError } from "@mam/scope/key-material.ts";
import { ScopeVerifier } from "@mam/scope/token.ts";
import { CONSUMER_LAG, consumerLags, DB_QUERY, projectionNames } from "./metrics.ts";

type Env = BaseConfig;

export interface BackboneOptions {
  name: string;
  env: Env;
  /** Whether to serve /healthz, /readyz and /metrics on HEALTH_PORT (a service with an HTTP door of its own serves the first two there). */
  healthServer?: boolean;
  logger: Logger;
  /** Services that own a store: its URL, schema and migrations. */
  database?: { url: string; schema: string; migrations: Record<string, Migration> };
  /** Extra readiness checks of the service itself (e.g. "read model caught up"). */
  checks?: () => Promise<Record<string, boolean>>;
}

/**
 * What every service stands on: NATS with the event stream declared, its own Postgres
 * schema migrated, a scope-token verifier, health/readiness endpoints and metrics. Connecting
 * fails with one clear line when a server is missing (DependencyUnavailable).
 */
export class Backbone<DB = unknown> {
  bus!: Bus;
  stream!: string;
  database?: Database<DB>;
  verifier!: ScopeVerifier;
  /** This service's Prometheus metrics, served at /metrics on the health port. */
  readonly metrics: ServiceMetrics;
  private health?: Server;
  private readonly unwatch: (() => void)[] = [];

  constructor(private readonly o: BackboneOptions) {
    this.metrics = metricsOf(o.name);
  }

  /** The port /healthz, /readyz and /metrics are served on (useful when HEALTH_PORT=0); none without a health server. */
  get healthPort(): number | undefined {
    return this.health && boundPort(this.health);
  }

  /** A gauge read at scrape time (see ServiceMetrics.watch), until the backbone closes. */
  watch<L extends string>(name: string, help: string, labelNames: readonly L[], source: Source<L>): void {
    this.unwatch.push(this.metrics.watch(name, help, labelNames, source));
  }

  /**
   * The lag of a durable consumer the service runs, on `stream` (CONSUMER_LAG, labelled with
   * the durable's name). Read models are watched from their checkpoints; every other durable
   * (a worker, a feed, a checkpointed consumer of its own table) is named here by its part, on
   * every replica, whether it pulls or stands by: the lag is the consumer's, shared by all.
   */
  watchConsumerLag(stream: string, durable: string): void {
    this.watch(
      CONSUMER_LAG.name,
      CONSUMER_LAG.help,
      CONSUMER_LAG.labels,
      consumerLags(this.bus, stream, () => [durable]),
    );
  }

  get logger() {
    return this.o.logger;
  }

  get db() {
    if (!this.database) throw new Error(`${this.o.name} has no database`);
    return this.database.db;
  }

  /** The store's URL and schema, for a connection of one's own (a lease's). */
  get store(): { url: string; schema: string } {
    if (!this.o.database) throw new Error(`${this.o.name} has no database`);
    return { url: this.o.database.url, schema: this.o.database.schema };
  }

  async connect(): Promise<void> {
    try {
      await this.open();
    } catch (err) {
      // Whatever did open must not keep the process alive.
      await this.close().catch(() => undefined);
      throw err;
    }
  }

  private async open(): Promise<void> {
    const { env, logger, name } = this.o;
    this.verifier = new ScopeVerifier(await this.publicKey(), name);
    this.bus = await connectBus({
      url: env.NATS_URL,
      prefix: env.NATS_PREFIX,
      name,
      logger,
      user: env.NATS_USER,
      password: env.NATS_PASSWORD,
      passwordFile: env.NATS_PASSWORD_FILE,
      replicas: env.NATS_REPLICAS,
    });
    timeRpc(this.bus, this.metrics);
    this.stream = await ensureEventsStream(this.bus);
    if (this.o.database) {
      const statements = this.metrics.histogram(DB_QUERY.name, DB_QUERY.help, DB_QUERY.labels, DB_QUERY.buckets);
      this.database = await openDatabase<DB>({
        ...this.o.database,
        preparedStatements: env.DB_PREPARED_STATEMENTS,
        logger,
        onQuery: (seconds, failed) => statements.observe({ outcome: failed ? "error" : "ok" }, seconds),
      });
      // Each read model's consumer on the event stream, named as its checkpoints name it.
      this.watch(CONSUMER_LAG.name, CONSUMER_LAG.help, CONSUMER_LAG.labels, consumerLags(this.bus, this.stream, projectionNames(this.db)));
    }
    if (this.o.healthServer !== false) this.health = await startHealthServer(env.HEALTH_PORT ?? 0, () => this.readiness(), env.HEALTH_HOST, this.metrics);
  }

  /**
   * The public key only: a service verifies tokens, and only the gateway, which signs them,
   * ever reads the private key (config refuses SCOPE_PRIVATE_KEY anywhere else).
   */
  private async publicKey(): Promise<string> {
    const { env, logger, name } = this.o;
    if ((env as { SCOPE_PRIVATE_KEY?: unknown }).SCOPE_PRIVATE_KEY) throw new ConfigError(`${name} was given SCOPE_PRIVATE_KEY: only the gateway holds it`);
    try {
      return await loadPublicKey({
        publicKey: env.SCOPE_PUBLIC_KEY,
        publicKeyFile: env.SCOPE_PUBLIC_KEY_FILE,
        waitMs: env.SCOPE_PUBLIC_KEY_WAIT_S * 1000,
        onWait: (file) =>
          logger.warn({ file, waitS: env.SCOPE_PUBLIC_KEY_WAIT_S }, "waiting for the scope public key file: the gateway creates it when it first starts"),
      });
    } catch (err) {
      if (err instanceof ScopeKeyError) throw new ConfigError(err.message);
      throw err;
    }
  }

  async readiness(): Promise<Record<string, boolean>> {
    const base: Record<string, boolean> = { nats: !!this.bus && !this.bus.nc.isClosed() };
    if (this.o.database) base.postgres = !!this.database && (await this.database.ping());
    return { ...base, ...(this.o.checks ? await this.o.checks() : {}) };
  }

  async close(): Promise<void> {
    for (const stop of this.unwatch.splice(0)) stop();
    if (this.health) await closeServer(this.health);
    if (this.bus) await closeBus(this.bus);
    await this.database?.close();
  }
}
