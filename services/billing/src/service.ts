import { BILLING_CONTEXT, parseBillingEvent } from "@mam/contracts/billing-events.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import type { Clock, IdGen } from "@mam/runtime/ids.ts";
import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import { ownEventsProjection } from "@mam/service-kit/projection.ts";
import { ServiceHost, type Part } from "@mam/service-kit/service.ts";
import type { BillingConfig } from "./config.ts";
import type { BillingContext } from "./context.ts";
import { migrations } from "./db/migrations/index.ts";
import type { BillingDb } from "./db/schema.ts";
import { MetricsProjection } from "./metrics/projection.ts";
import { getMetrics } from "./metrics/read.ts";
import { DefaultLimitsPart, PlansPart } from "./plans/part.ts";
import { applyBillingEvent, PROJECTION } from "./plans/projection.ts";
import { READ_MODEL_TABLES } from "./plans/read-model-tables.ts";
import { getAccount } from "./plans/read.ts";
import { signatureVerifier, stripeClient } from "./stripe/client.ts";
import { GracePart } from "./stripe/grace.ts";
import { createCheckout, createPortal, handleStripeWebhook } from "./stripe/handlers.ts";

export interface BillingOptions {
  clock?: Clock;
  newId?: IdGen;
  logger?: Logger;
}

/**
 * Billing: usage metrics counted from the event stream (`GET /v1/metrics`), each tenant's
 * plan (TenantPlanChanged, which the mailbox enforces; `GET /v1/billing`), and its Stripe
 * subscription (checkout, portal, signed webhooks; TenantBillingChanged, paused or not).
 */
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
      events: { context: BILLING_CONTEXT, projection: PROJECTION },
      projections: (ctx) => [
        ownEventsProjection({
          name: PROJECTION,
          context: BILLING_CONTEXT,
          db: ctx.db,
          parse: parseBillingEvent,
          apply: applyBillingEvent,
          tables: READ_MODEL_TABLES,
        }),
      ],
      clock: opts.clock,
      newId: opts.newId,
      context: (base) => ({ ...base, cfg }),
      parts: (ctx, b) => {
        const parts: Part[] = [(this.metrics = new MetricsProjection(b, ctx.db))];
        const plans = cfg.BILLING_PLANS;
        parts.push(new DefaultLimitsPart(ctx, plans?.find((p) => p.id === cfg.BILLING_DEFAULT_PLAN) ?? null));
        if (plans) parts.push(new PlansPart(ctx, b, plans, plans.find((p) => p.id === cfg.BILLING_DEFAULT_PLAN)!), new GracePart(ctx));
        return parts;
      },
      handlers: (server, ctx) => {
        server.serve(RpcContracts.billing.metrics, async (req, c) => ({ status: 200, body: await getMetrics(ctx, c.claims, req) }));
        server.serve(RpcContracts.billing.account, async (_req, c) => ({ status: 200, body: await getAccount(ctx, c.claims) }));
        const stripe = stripeClient(cfg);
        const verifier = signatureVerifier(cfg);
        server.serve(RpcContracts.billing.checkout, async (req, c) => ({ status: 200, body: await createCheckout(ctx, stripe, req, c) }));
        server.serve(RpcContracts.billing.portal, async (_req, c) => ({ status: 200, body: await createPortal(ctx, stripe, c) }));
        // No scope token: Stripe calls it through the gateway, and its signature is checked here.
        server.servePublic(RpcContracts.billing.stripeWebhook, async (req, c) => ({ status: 200, body: await handleStripeWebhook(ctx, verifier, req, c) }));
      },
    });
  }
}

export function createBillingService(cfg: BillingConfig, logger: Logger = createLogger("billing", cfg.LOG_LEVEL)): BillingService {
  return new BillingService(cfg, { logger });
}
