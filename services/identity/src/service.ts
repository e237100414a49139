import type { DurableConsumer } from "@mam/bus/consumer.ts";
import { RpcServer } from "@mam/bus/rpc.ts";
import { systemClock, uuidv7, type Clock, type IdGen } from "@mam/runtime/ids.ts";
import { RecentlyApplied } from "@mam/service-kit/recent.ts";
import type { Service } from "@mam/runtime/lifecycle.ts";
import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import { Backbone } from "@mam/service-kit/backbone.ts";
import { ensureOperatorKey } from "./commands/operator-key.ts";
import type { IdentityConfig } from "./config.ts";
import type { IdentityContext } from "./context.ts";
import { migrations } from "./db/migrations/index.ts";
import type { IdentityDb } from "./db/schema.ts";
import { startIdentityProjection } from "./projections/consumer.ts";
import { startWorkspaceCounters } from "./projections/workspace-counters.ts";
import { registerIdentityRpc } from "./rpc/handlers.ts";

export interface IdentityOptions {
  clock?: Clock;
  newId?: IdGen;
  logger?: Logger;
  /** Receives a generated operator key, once. main.ts prints it; tests keep it. */
  onGeneratedOperatorKey?: (key: string) => void;
}

export class IdentityService implements Service {
  readonly logger: Logger;
  private readonly backbone: Backbone<IdentityDb>;
  private consumer?: DurableConsumer;
  private counters?: DurableConsumer;
  private rpc?: RpcServer;
  private caughtUp = false;

  constructor(
    readonly cfg: IdentityConfig,
    private readonly opts: IdentityOptions = {},
  ) {
    this.logger = opts.logger ?? createLogger("identity", cfg.LOG_LEVEL);
    this.backbone = new Backbone<IdentityDb>({
      name: "identity",
      env: cfg,
      logger: this.logger,
      database: { url: cfg.DATABASE_URL, schema: cfg.DB_SCHEMA, migrations },
      checks: async () => ({ readModel: this.caughtUp }),
    });
  }

  async start(): Promise<void> {
    const b = this.backbone;
    await b.connect();
    const ctx: IdentityContext = {
      db: b.db,
      bus: b.bus,
      logger: this.logger,
      clock: this.opts.clock ?? systemClock,
      newId: this.opts.newId ?? (() => uuidv7()),
      recent: new RecentlyApplied(),
    };
    this.consumer = await startIdentityProjection(ctx, b);
    this.counters = await startWorkspaceCounters(ctx, b);
    this.caughtUp = true;

    const generated = await ensureOperatorKey(ctx, this.cfg.SUPER_ADMIN_KEY);
    if (generated) this.opts.onGeneratedOperatorKey?.(generated);

    this.rpc = new RpcServer(b.bus, "identity", b.verifier, this.logger);
    registerIdentityRpc(this.rpc, ctx);
    this.logger.info({ healthPort: this.cfg.HEALTH_PORT }, "identity started");
  }

  readiness() {
    return this.backbone.readiness();
  }

  async destroy(): Promise<void> {
    await this.rpc?.close();
    await this.counters?.stop();
    await this.consumer?.stop();
    await this.backbone.close();
  }
}
