import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import { ServiceHost } from "@mam/service-kit/service.ts";
import type { RealtimeConfig } from "./config.ts";

/** Realtime: connected to NATS and its own schema; its commands arrive with later work. */
export function createRealtimeService(cfg: RealtimeConfig, logger: Logger = createLogger("realtime", cfg.LOG_LEVEL)) {
  return new ServiceHost({
    name: "realtime",
    env: cfg,
    logger,
    database: { url: cfg.DATABASE_URL, schema: cfg.DB_SCHEMA, migrations: {} },
    context: (base) => base,
  });
}
