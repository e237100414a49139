import { publishEncoded } from "@mam/bus/events.ts";
import { runMain } from "@mam/runtime/lifecycle.ts";
import type { Publish } from "@mam/service-kit/relay.ts";
import { ledgerConfig, ledgerService } from "./ledger.ts";

/**
 * The ledger as a process of its own, for kill -9. LEDGER_FAULT holds every relay pass
 * for ever at one point: `before-publish` (committed, nothing sent) or `after-publish`
 * (the stream took the events, the outbox rows are not marked).
 */
const never = () => new Promise<never>(() => undefined);
const fault = process.env.LEDGER_FAULT ?? "";
const publish: Publish | undefined =
  fault === "before-publish"
    ? () => never()
    : fault === "after-publish"
      ? async (bus, row, afterId) => {
          await publishEncoded(bus, row.subject, row.envelope, row.event_id, afterId);
          process.stdout.write(`published ${row.event_id}\n`);
          return never();
        }
      : undefined;

await runMain("ledger", async () => {
  const cfg = ledgerConfig(process.env);
  const service = ledgerService(cfg, { publish });
  return { service, logger: service.logger, shutdownTimeoutMs: 2_000 };
});
