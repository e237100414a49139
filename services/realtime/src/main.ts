import { runMain } from "@mam/runtime/lifecycle.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { loadConfig } from "./config.ts";
import { RealtimeService } from "./service.ts";

await runMain("realtime", async () => {
  const cfg = loadConfig();
  const logger = createLogger("realtime", cfg.LOG_LEVEL);
  return { service: new RealtimeService(cfg, { logger }), logger, shutdownTimeoutMs: cfg.SHUTDOWN_TIMEOUT_MS };
});
