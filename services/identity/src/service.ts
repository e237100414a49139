import type { Server } from "node:http";
import { closeBus, connectBus, type Bus } from "@mam/bus/connection.ts";
import type { DurableConsumer } from "@mam/bus/consumer.ts";
import { RpcServer } from "@mam/bus/rpc.ts";
import { ensureEventsStream } from "@mam/bus/streams.ts";
import { openDatabase, type Database } from "@mam/db/database.ts";
import { closeServer, startHealthServer } from "@mam/runtime/health.ts";
import { systemClock, uuidv7, type Clock, type IdGen } from "@mam/runtime/ids.ts";
import type { Service } from "@mam/runtime/lifecycle.ts";
import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { loadScopeKeys } from "@mam/scope/key-material.ts";
import { ScopeVerifier } from "@mam/scope/token.ts";
import { ensureOperatorKey } from "./commands/operator-key.ts";
import type { IdentityConfig } from "./config.ts";
import type { IdentityContext } from "./context.ts";
import { migrations } from "./db/migrations/index.ts";
import type { IdentityDb } from "./db/schema.ts";
import { IDENTITY_DURABLE, identityConsumer } from "./projections/consumer.ts";
import { PROJECTION } from "./projections/identity-read-model.ts";
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
  private bus?: Bus;
  private database?: Database<IdentityDb>;
  private consumer?: DurableConsumer;
  private rpc?: RpcServer;
  private health?: Server;
  private caughtUp = false;

  constructor(
    readonly cfg: IdentityConfig,
    private readonly opts: IdentityOptions = {},
  ) {
    this.logger = opts.logger ?? createLogger("identity", cfg.LOG_LEVEL);
  }

  async start(): Promise<void> {
    const { cfg, logger } = this;
    const keys = loadScopeKeys({ privateKey: cfg.SCOPE_PRIVATE_KEY, publicKey: cfg.SCOPE_PUBLIC_KEY, keyFile: cfg.SCOPE_KEY_FILE });
    this.bus = await connectBus({ url: cfg.NATS_URL, prefix: cfg.NATS_PREFIX, name: "identity", logger });
    const stream = await ensureEventsStream(this.bus);
    this.database = await openDatabase<IdentityDb>({ url: cfg.DATABASE_URL, schema: cfg.DB_SCHEMA, logger, migrations });
    const ctx: IdentityContext = {
      db: this.database.db,
      bus: this.bus,
      logger,
      clock: this.opts.clock ?? systemClock,
      newId: this.opts.newId ?? (() => uuidv7()),
    };
    this.health = await startHealthServer(cfg.HEALTH_PORT, () => this.readiness());

    await this.replayIfReadModelIsEmpty(stream);
    this.consumer = identityConsumer(ctx, stream);
    await this.consumer.start();
    // Decisions are taken against the read model: serve nothing until it has caught up.
    await waitFor(() => this.consumer!.caughtUp(), { timeoutMs: 10 * 60_000, intervalMs: 50 });
    this.caughtUp = true;

    const generated = await ensureOperatorKey(ctx, cfg.SUPER_ADMIN_KEY);
    if (generated) this.opts.onGeneratedOperatorKey?.(generated);

    this.rpc = new RpcServer(this.bus, "identity", new ScopeVerifier(keys.publicKeyPem), logger);
    registerIdentityRpc(this.rpc, ctx);
    logger.info({ healthPort: cfg.HEALTH_PORT }, "identity started");
  }

  /** A read model without a checkpoint was dropped or never built: rebuild it from the first event. */
  private async replayIfReadModelIsEmpty(stream: string): Promise<void> {
    const cp = await this.database!.db.selectFrom("projection_checkpoint").select("stream_seq").where("projection", "=", PROJECTION).executeTakeFirst();
    if (cp) return;
    try {
      await this.bus!.jsm.consumers.delete(stream, IDENTITY_DURABLE);
      this.logger.info("read model is empty: replaying identity events from the start");
    } catch {
      // No consumer yet: it will be created delivering from the first event.
    }
  }

  async readiness(): Promise<Record<string, boolean>> {
    return {
      nats: !!this.bus && !this.bus.nc.isClosed(),
      postgres: !!this.database && (await this.database.ping()),
      readModel: this.caughtUp,
    };
  }

  async destroy(): Promise<void> {
    await this.rpc?.close();
    await this.consumer?.stop();
    if (this.health) await closeServer(this.health);
    if (this.bus) await closeBus(this.bus);
    await this.database?.close();
  }
}
