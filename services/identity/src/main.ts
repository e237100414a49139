import { runMain } from "@mam/runtime/lifecycle.ts";
import { loadConfig } from "./config.ts";
import { IdentityService } from "./service.ts";

await runMain("identity", async () => {
  const cfg = loadConfig();
  const service = new IdentityService(cfg, {
    // Printed once, straight to the terminal, never through the logger. One line, always
    // worded so: `pnpm start` (scripts/start.ts) finds it there and shows the key in a box.
    onGeneratedOperatorKey: (key) =>
      process.stdout.write(`\n  Operator key generated (shown once, stored hashed): ${key}  (set SUPER_ADMIN_KEY to choose your own)\n\n`),
  });
  return { service, logger: service.logger, shutdownTimeoutMs: cfg.SHUTDOWN_TIMEOUT_MS };
});
