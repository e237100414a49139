import { runMain } from "@mam/runtime/lifecycle.ts";
import { loadConfig } from "./config.ts";
import { SmtpIngressService } from "./service.ts";

await runMain("smtp-ingress", async () => {
  const cfg = loadConfig();
  const service = new SmtpIngressService(cfg);
  return { service, logger: service.logger, shutdownTimeoutMs: cfg.SHUTDOWN_TIMEOUT_MS };
});
