import { runMain } from "@mam/runtime/lifecycle.ts";
import { loadConfig } from "./config.ts";
import { GatewayService } from "./service.ts";

await runMain("gateway", async () => {
  const cfg = loadConfig();
  const service = new GatewayService(cfg);
  return { service, logger: service.logger, shutdownTimeoutMs: cfg.SHUTDOWN_TIMEOUT_MS };
});
