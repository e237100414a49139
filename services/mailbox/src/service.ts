import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import { BackboneService } from "@mam/service-kit/backbone.ts";
import type { MailboxConfig } from "./config.ts";

/** Mailbox: connected to NATS and its own schema; its commands arrive with later work. */
export function createMailboxService(cfg: MailboxConfig, logger: Logger = createLogger("mailbox", cfg.LOG_LEVEL)) {
  return new BackboneService({
    name: "mailbox",
    env: cfg,
    logger,
    database: { url: cfg.DATABASE_URL, schema: cfg.DB_SCHEMA, migrations: {} },
  });
}
