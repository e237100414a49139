import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import { BackboneService } from "@mam/service-kit/backbone.ts";
import type { SmtpIngressConfig } from "./config.ts";

/** SMTP ingress owns no store: only what is in flight, published durably to NATS. */
export function createSmtpIngressService(cfg: SmtpIngressConfig, logger: Logger = createLogger("smtp-ingress", cfg.LOG_LEVEL)) {
  return new BackboneService({ name: "smtp-ingress", env: cfg, logger });
}
