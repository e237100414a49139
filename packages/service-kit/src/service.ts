import type { Migration } from "kysely";
import { RpcServer } from "@mam/bus/rpc.ts";
import type { BaseConfig } from "@mam/runtime/config.ts";
import { systemClock, uuidv7, type Clock, type IdGen } from "@mam/runtime/ids.ts";
import type { Service } from "@mam/runtime/lifecycle.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import { Backbone } from "./backbone.ts";
import type { CommandContext } from "./commands.ts";
import { kitMigrations } from "./migrations/index.ts";
import { retireProjection, startProjection, type ProjectionSpec } from "./projection.ts";
import { RecentlyApplied } from "./recent.ts";
import { OutboxRelay, type RelayOptions } from "./relay.ts";
import type { SingleActive } from "./single-active.ts";

/** Something a service runs besides its handlers: a consumer, a worker, a server. */
export interface Part {
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
}

/** What every handler, command and projection of a service with a store gets. */
export type BaseContext<DB> = CommandContext<DB>;

export interface ServiceSpec<DB, Ctx> {
  name: string;
  env: BaseConfig;
  /** False for a service that serves /healthz and /readyz on its own HTTP door. */
  healthServer?: boolean;
  logger: Logger;
  /** A service that keeps a store: its URL, schema and migrations (the kit adds its outbox). */
  database?: { url: string; schema: string; migrations: Record<string, Migration> };
  /**
   * An event-sourced service: the context its events are published under and the read
   * model its commands apply them to. It gets the outbox relay.
   */
  events?: { context: string; projection: string; relay?: Pick<RelayOptions, "publish" | "sweepMs" | "batch" | "retentionMs"> };
  clock?: Clock;
  newId?: IdGen;
  /** The service's own context, built on the base one. */
  context: (base: BaseContext<DB>, backbone: Backbone<DB>) => Ctx;
  /** Read models kept by durable consumers; nothing is served before each has caught up. */
  projections?: (ctx: Ctx) => ProjectionSpec[];
  /**
   * Read models an earlier release kept and this one does not (replaced by others): their
   * consumers and checkpoints are deleted at start, before the projections start. Left, a
   * consumer nobody pulls keeps every matching event pending, and shows a lag growing for ever.
   */
  retiredProjections?: string[];
  /** Runs once the read models caught up, before anything is served (an operator key made sure of). */
  prepare?: (ctx: Ctx) => Promise<void>;
  /** Consumers, workers, servers: started in order after `prepare`, stopped in reverse. */
  parts?: (ctx: Ctx, backbone: Backbone<DB>) => Part[] | Promise<Part[]>;
  /** Request handlers, registered last, so a request never meets a service half started. */
  handlers?: (server: RpcServer, ctx: Ctx, backbone: Backbone<DB>) => void;
  /** Readiness checks of the service's own, besides NATS, Postgres and "started". */
  checks?: (ctx: Ctx) => Promise<Record<string, boolean>>;
  /** Logged with "started". */
  describe?: (ctx: Ctx) => Record<string, unknown>;
}

/**
 * One service skeleton: connect (NATS with the event stream, the store migrated, the scope
 * verifier, health endpoints), bring the read models up to date, start the outbox relay,
 * prepare, start the parts, then serve requests; `destroy` undoes it in reverse. A service
 * is a spec: its context, projections, parts and handlers.
 */
export class ServiceHost<DB, Ctx> implements Service {
  readonly logger: Logger;
  readonly backbone: Backbone<DB>;
  private context?: Ctx;
  private relay?: OutboxRelay;
  private consumers: SingleActive[] = [];
  private parts: Part[] = [];
  private rpc?: RpcServer;
  private caughtUp = false;
  /** Every part started and every handler subscribed. */
  private serving = false;

  constructor(private readonly spec: ServiceSpec<DB, Ctx>) {
    this.logger = spec.logger;
    const database = spec.database && {
      ...spec.database,
      migrations: spec.events ? { ...spec.database.migrations, ...kitMigrations } : spec.database.migrations,
    };
    this.backbone = new Backbone<DB>({
      name: spec.name,
      env: spec.env,
      logger: spec.logger,
      healthServer: spec.healthServer,
      database,
      checks: async () => ({
        ...(spec.projections ? { readModel: this.caughtUp } : {}),
        serving: this.serving,
        ...(spec.checks ? (this.context ? await spec.checks(this.context) : { started: false }) : {}),
      }),
    });
  }

  /** The service's context, once started. */
  get ctx(): Ctx {
    if (!this.context) throw new Error(`${this.spec.name} is not started`);
    return this.context;
  }

  async start(): Promise<void> {
    try {
      await this.open();
    } catch (err) {
      await this.destroy().catch(() => undefined);
      throw err;
    }
  }

  private async open(): Promise<void> {
    const { spec } = this;
    const b = this.backbone;
    await b.connect();
    const base: BaseContext<DB> = {
      db: b.database ? b.db : (undefined as never),
      bus: b.bus,
      logger: this.logger,
      clock: spec.clock ?? systemClock,
      newId: spec.newId ?? (() => uuidv7()),
      recent: new RecentlyApplied(),
    };
    if (spec.events) {
      this.relay = new OutboxRelay({ db: b.db, bus: b.bus, logger: this.logger, context: spec.events.context, ...spec.events.relay });
      base.relay = this.relay;
    }
    const ctx = spec.context(base, b);
    this.context = ctx;
    for (const name of spec.retiredProjections ?? []) await retireProjection(b, name);
    for (const p of spec.projections?.(ctx) ?? []) this.consumers.push(await startProjection(b, p, base.recent, spec.name));
    this.caughtUp = true;
    this.relay?.start();
    await spec.prepare?.(ctx);
    for (const part of (await spec.parts?.(ctx, b)) ?? []) {
      await part.start();
      this.parts.push(part);
    }
    if (spec.handlers) {
      this.rpc = new RpcServer(b.bus, spec.name, b.verifier, this.logger);
      spec.handlers(this.rpc, ctx, b);
      // The server has our subscriptions before anyone is told we are started.
      await b.bus.nc.flush();
    }
    this.serving = true;
    this.logger.info({ healthPort: spec.env.HEALTH_PORT, ...spec.describe?.(ctx) }, `${spec.name} started`);
  }

  readiness(): Promise<Record<string, boolean>> {
    return this.backbone.readiness();
  }

  async destroy(): Promise<void> {
    this.serving = false;
    await this.rpc?.close();
    for (const part of this.parts.splice(0).reverse()) await part.stop();
    for (const c of this.consumers.splice(0).reverse()) await c.stop();
    await this.relay?.stop();
    await this.backbone.close();
  }
}
