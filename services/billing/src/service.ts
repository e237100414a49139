import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import { ServiceHost } from "@mam/service-kit/service.ts";
import type { BillingConfig } from "./config.ts";

/** Billing: connected to NATS and its own schema; its commands arrive with later work. */
export function createBillingService(cfg: BillingConfig, logger: Logger = createLogger("billing", cfg.LOG_LEVEL)) {
  return new ServiceHost({
    name: "billing",
    env: cfg,
    logger,
    database: { url: cfg.DATABASE_URL, schema: cfg.DB_SCHEMA, migrations: {} },
    context: (base) => base,
  });
}
