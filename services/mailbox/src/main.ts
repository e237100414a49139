import { runMain } from "@mam/runtime/lifecycle.ts";
import { loadConfig } from "./config.ts";
import { MailboxService } from "./service.ts";

await runMain("mailbox", async () => {
  const cfg = loadConfig();
  const service = new MailboxService(cfg);
  return { service, logger: service.logger, shutdownTimeoutMs: cfg.SHUTDOWN_TIMEOUT_MS };
});
