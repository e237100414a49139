import type { Migration } from "kysely";
// --- feed migrations ---
import * as feedVerifiedDomains from "./2026-12-01T0100-feed-verified-domains.ts";
import * as feedDomainVersions from "./2026-12-02T0100-feed-domain-versions.ts";
// --- ws migrations ---
import * as wsDirectory from "./2026-12-01T0200-ws-directory.ts";
// --- webhooks migrations ---
import * as webhooks from "./2026-12-01T0300-webhooks.ts";

/** Every migration, by name; names sort in the order they must run. */
export const migrations: Record<string, Migration> = {
  // --- feed ---
  "2026-12-01T0100-feed-verified-domains": feedVerifiedDomains,
  "2026-12-02T0100-feed-domain-versions": feedDomainVersions,
  // --- ws ---
  "2026-12-01T0200-ws-directory": wsDirectory,
  // --- webhooks ---
  "2026-12-01T0300-webhooks": webhooks,
};
