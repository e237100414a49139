import { runMain } from "@mam/runtime/lifecycle.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { loadConfig } from "./config.ts";
import { createMailboxService } from "./service.ts";

await runMain("mailbox", async () => {
  const cfg = loadConfig(process.env);
  const logger = createLogger("mailbox", cfg.LOG_LEVEL);
  return { service: createMailboxService(cfg, logger), logger, shutdownTimeoutMs: cfg.SHUTDOWN_TIMEOUT_MS };
});
