import { createServer, type Server } from "node:http";
import type { Express } from "express";
import type { Redis } from "ioredis";
import { closeBus, connectBus, type Bus } from "@mam/bus/connection.ts";
import { closeServer, boundPort } from "@mam/runtime/health.ts";
import type { Service } from "@mam/runtime/lifecycle.ts";
import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import { loadScopeKeys } from "@mam/scope/key-material.ts";
import { ScopeSigner } from "@mam/scope/token.ts";
import { Authenticator } from "./auth/authenticator.ts";
import { KeyCache } from "./auth/key-cache.ts";
import { RateLimiter } from "./auth/rate-limit.ts";
import type { GatewayConfig } from "./config.ts";
import { buildApp } from "./http/app.ts";
import { connectRedis } from "./redis.ts";

export class GatewayService implements Service {
  readonly logger: Logger;
  private bus?: Bus;
  private redis?: Redis;
  private auth?: Authenticator;
  private server?: Server;
  /** The express app, once started: what it routes is what the API document must show. */
  app?: Express;

  constructor(
    readonly cfg: GatewayConfig,
    opts: { logger?: Logger } = {},
  ) {
    this.logger = opts.logger ?? createLogger("gateway", cfg.LOG_LEVEL);
  }

  /** The port actually bound (useful when PORT=0). */
  get port(): number {
    return boundPort(this.server!);
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
    const { cfg, logger } = this;
    const keys = loadScopeKeys({ privateKey: cfg.SCOPE_PRIVATE_KEY, publicKey: cfg.SCOPE_PUBLIC_KEY, keyFile: cfg.SCOPE_KEY_FILE });
    if (!keys.privateKeyPem) throw new Error("the gateway needs SCOPE_PRIVATE_KEY (or a key file) to mint scope tokens");
    this.bus = await connectBus({ url: cfg.NATS_URL, prefix: cfg.NATS_PREFIX, name: "gateway", logger });
    this.redis = await connectRedis(cfg.REDIS_URL, logger);
    this.auth = new Authenticator(this.bus, new KeyCache(cfg.KEY_CACHE_TTL_S * 1000), logger, cfg.RPC_TIMEOUT_MS);
    await this.auth.watchRevocations();
    this.app = buildApp({
      cfg,
      bus: this.bus,
      auth: this.auth,
      limiter: new RateLimiter(this.redis, cfg.RATE_LIMIT_MAX, cfg.RATE_LIMIT_WINDOW_S, logger, cfg.NATS_PREFIX),
      signer: new ScopeSigner(keys.privateKeyPem),
      logger,
      readiness: async () => ({ nats: !this.bus!.nc.isClosed(), redis: this.redis!.status === "ready" }),
    });
    this.server = createServer(this.app);
    this.server.headersTimeout = 20_000;
    this.server.requestTimeout = 30_000;
    this.server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(cfg.PORT, cfg.HOST, () => resolve());
    });
    logger.info({ port: this.port }, "gateway listening");
  }

  async destroy(): Promise<void> {
    if (this.server?.listening) await closeServer(this.server);
    this.auth?.stop();
    if (this.bus) await closeBus(this.bus);
    this.redis?.disconnect();
  }
}
