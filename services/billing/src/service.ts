import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import type { Clock, IdGen } from "@mam/runtime/ids.ts";
import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import { ServiceHost } from "@mam/service-kit/service.ts";
import type { BillingConfig } from "./config.ts";
import type { BillingContext } from "./context.ts";
import { migrations } from "./db/migrations/index.ts";
import type { BillingDb } from "./db/schema.ts";
import { MetricsProjection } from "./metrics/projection.ts";
import { getMetrics } from "./metrics/read.ts";

export interface BillingOptions {
  clock?: Clock;
  newId?: IdGen;
  logger?: Logger;
}

/** Billing: usage metrics counted from the event stream (`GET /v1/metrics`). */
export class BillingService extends ServiceHost<BillingDb, BillingContext> {
  /** The metrics counters' consumers (set once started). */
  metrics?: MetricsProjection;

  constructor(
    readonly cfg: BillingConfig,
    opts: BillingOptions = {},
  ) {
    super({
      name: "billing",
      env: cfg,
      logger: opts.logger ?? createLogger("billing", cfg.LOG_LEVEL),
      database: { url: cfg.DATABASE_URL, schema: cfg.DB_SCHEMA, migrations },
      clock: opts.clock,
      newId: opts.newId,
      context: (base) => ({ ...base, cfg }),
      parts: (ctx, b) => [(this.metrics = new MetricsProjection(b, ctx.db))],
      handlers: (server, ctx) => {
        server.serve(RpcContracts.billing.metrics, async (req, c) => ({ status: 200, body: await getMetrics(ctx, c.claims, req) }));
      },
    });
  }
}

export function createBillingService(cfg: BillingConfig, logger: Logger = createLogger("billing", cfg.LOG_LEVEL)): BillingService {
  return new BillingService(cfg, { logger });
}
