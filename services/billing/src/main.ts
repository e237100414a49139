import { runMain } from "@mam/runtime/lifecycle.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { loadConfig } from "./config.ts";
import { createBillingService } from "./service.ts";

await runMain("billing", async () => {
  const cfg = loadConfig();
  const logger = createLogger("billing", cfg.LOG_LEVEL);
  return { service: createBillingService(cfg, logger), logger, shutdownTimeoutMs: cfg.SHUTDOWN_TIMEOUT_MS };
});
