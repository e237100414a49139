import { createServer, type Server } from "node:http";
import type { Express } from "express";
import type { Redis } from "ioredis";
import { boundPort, closeServer } from "@mam/runtime/health.ts";
import { ConfigError } from "@mam/runtime/config.ts";
import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import { loadSigningKeys, ScopeKeyError, type SigningKeys } from "@mam/scope/key-material.ts";
import { ScopeSigner } from "@mam/scope/token.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import { ServiceHost, type BaseContext, type Part } from "@mam/service-kit/service.ts";
import { Authenticator } from "./auth/authenticator.ts";
import { KeyCache } from "./auth/key-cache.ts";
import { RateLimiter } from "./auth/rate-limit.ts";
import type { GatewayConfig } from "./config.ts";
import { buildApp } from "./http/app.ts";
import { mcpDoorOf } from "./mcp-door.ts";
import { WebSocketDoor } from "./http/websocket.ts";
import { connectRedis } from "./redis.ts";

interface GatewayContext extends BaseContext<never> {
  redis?: Redis;
  auth?: Authenticator;
}

/** Public HTTP: authenticates keys, mints scope tokens, forwards to the services over NATS. */
export class GatewayService extends ServiceHost<never, GatewayContext> {
  private server?: Server;
  private webSockets?: WebSocketDoor;
  /** The express app, once started: what it routes is what the API document must show. */
  app?: Express;

  private readonly keys: SigningKeys;

  constructor(
    readonly cfg: GatewayConfig,
    opts: { logger?: Logger } = {},
  ) {
    // Before the backbone opens: it verifies with the public key, which this may be creating.
    const keys = signingKeys(cfg);
    super({
      name: "gateway",
      // The private key stays here: the backbone, like every service's, gets the public one only.
      env: { ...cfg, SCOPE_PRIVATE_KEY: undefined, SCOPE_PUBLIC_KEY: keys.publicKeyPem },
      logger: opts.logger ?? createLogger("gateway", cfg.LOG_LEVEL),
      // /healthz and /readyz are served on the public port too; /metrics only on a HEALTH_PORT
      // of its own, never to the public. HEALTH_PORT equal to PORT names the public door: no second one.
      healthServer: cfg.HEALTH_PORT !== undefined && (cfg.HEALTH_PORT === 0 || cfg.HEALTH_PORT !== cfg.PORT),
      context: (base) => ({ ...base }),
      checks: async (ctx) => ({ redis: ctx.redis?.status === "ready" }),
      parts: (ctx, b) => [this.redisPart(ctx), this.authPart(ctx), this.httpPart(ctx, b)],
      describe: () => ({ port: this.port }),
    });
    this.keys = keys;
  }

  /** The port actually bound (useful when PORT=0). */
  get port(): number {
    return boundPort(this.server!);
  }

  private redisPart(ctx: GatewayContext): Part {
    return {
      start: async () => {
        ctx.redis = await connectRedis(this.cfg.REDIS_URL, ctx.logger);
      },
      stop: () => ctx.redis?.disconnect(),
    };
  }

  /** Keys resolved through identity, cached, and evicted by revocation events. */
  private authPart(ctx: GatewayContext): Part {
    return {
      start: async () => {
        ctx.auth = new Authenticator(ctx.bus, new KeyCache(this.cfg.KEY_CACHE_TTL_S * 1000), ctx.logger, this.cfg.RPC_TIMEOUT_MS);
        await ctx.auth.watchRevocations();
      },
      stop: () => ctx.auth?.stop(),
    };
  }

  private httpPart(ctx: GatewayContext, b: Backbone<never>): Part {
    const { cfg } = this;
    return {
      start: async () => {
        const limiter = new RateLimiter(
          ctx.redis!,
          {
            keyMax: cfg.RATE_LIMIT_MAX,
            tenantMax: cfg.TENANT_RATE_LIMIT_MAX,
            unauthenticatedMax: cfg.UNAUTHENTICATED_RATE_LIMIT_MAX,
            windowS: cfg.RATE_LIMIT_WINDOW_S,
          },
          ctx.logger,
          cfg.NATS_PREFIX,
        );
        const signer = new ScopeSigner(this.keys.privateKeyPem);
        this.app = buildApp({ cfg, bus: ctx.bus, auth: ctx.auth!, limiter, signer, logger: ctx.logger, readiness: () => b.readiness(), metrics: b.metrics });
        const server = createServer(this.app);
        // WebSocket upgrades: checked here, then piped to a realtime replica.
        this.webSockets = new WebSocketDoor({ cfg, app: this.app, bus: ctx.bus, auth: ctx.auth!, limiter, signer, logger: ctx.logger });
        this.webSockets.attach(server);
        server.headersTimeout = 20_000;
        server.requestTimeout = 30_000;
        server.keepAliveTimeout = 5_000;
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen(cfg.PORT, cfg.HOST, () => resolve());
        });
        this.server = server;
      },
      stop: async () => {
        // Before the server's close, which waits for every response under way.
        await mcpDoorOf(this.app)?.close();
        await this.webSockets?.close();
        if (this.server?.listening) await closeServer(this.server);
      },
    };
  }
}

/** The signing pair: SCOPE_PRIVATE_KEY, or the key file (created, and its public half written, on first start). */
function signingKeys(cfg: GatewayConfig): SigningKeys {
  try {
    return loadSigningKeys({
      privateKey: cfg.SCOPE_PRIVATE_KEY,
      publicKey: cfg.SCOPE_PUBLIC_KEY,
      keyFile: cfg.SCOPE_KEY_FILE,
      publicKeyFile: cfg.SCOPE_PUBLIC_KEY_FILE,
    });
  } catch (err) {
    if (err instanceof ScopeKeyError) throw new ConfigError(err.message);
    throw err;
  }
}
