import type { Migration } from "kysely";
import * as feedVerifiedDomains from "./2026-12-01T0100-feed-verified-domains.ts";
import * as feedDomainVersions from "./2026-12-02T0100-feed-domain-versions.ts";
import * as wsDirectory from "./2026-12-01T0200-ws-directory.ts";
import * as webhooks from "./2026-12-01T0300-webhooks.ts";
import * as autovacuum from "./2026-12-09T0100-autovacuum.ts";
import * as feedDomainTransitions from "./2026-12-10T0100-feed-domain-transitions.ts";

/** Every migration, by name; names sort in the order they must run. */
export const migrations: Record<string, Migration> = {
  "2026-12-01T0100-feed-verified-domains": feedVerifiedDomains,
  "2026-12-02T0100-feed-domain-versions": feedDomainVersions,
  "2026-12-01T0200-ws-directory": wsDirectory,
  "2026-12-01T0300-webhooks": webhooks,
  "2026-12-09T0100-autovacuum": autovacuum,
  "2026-12-10T0100-feed-domain-transitions": feedDomainTransitions,
};
