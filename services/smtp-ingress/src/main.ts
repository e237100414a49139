import { runMain } from "@mam/runtime/lifecycle.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { loadConfig } from "./config.ts";
import { createSmtpIngressService } from "./service.ts";

await runMain("smtp-ingress", async () => {
  const cfg = loadConfig();
  const logger = createLogger("smtp-ingress", cfg.LOG_LEVEL);
  return { service: createSmtpIngressService(cfg, logger), logger, shutdownTimeoutMs: cfg.SHUTDOWN_TIMEOUT_MS };
});
