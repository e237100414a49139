import type { Migration } from "kysely";
import * as outbox from "./2026-11-30T0000-outbox.ts";
import * as outboxAutovacuum from "./2026-12-09T0000-outbox-autovacuum.ts";
import * as decisionLock from "./2026-12-10T0000-decision-lock.ts";
import * as relayClaim from "./2026-12-10T0100-relay-claim.ts";

/**
 * The kit's own tables, migrated with every service that keeps a store (names sort after
 * the services' first migrations, and never collide with theirs). A new one sorts after every
 * service's latest migration: Kysely refuses to apply one that sorts before a migration applied already.
 */
export const kitMigrations: Record<string, Migration> = {
  "2026-11-30T0000-kit-outbox": outbox,
  "2026-12-09T0000-kit-outbox-autovacuum": outboxAutovacuum,
  "2026-12-10T0000-kit-decision-lock": decisionLock,
  "2026-12-10T0100-kit-relay-claim": relayClaim,
};
