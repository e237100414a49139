import type { Migration } from "kysely";
import * as init from "./2026-11-27T0000-init.ts";
import * as liveKeyHash from "./2026-11-27T0001-live-key-hash.ts";
import * as checkpointPerTenant from "./2026-11-27T0002-checkpoint-per-tenant.ts";
import * as liveTenantKeys from "./2026-11-30T0000-live-tenant-keys.ts";
import * as keyListOrder from "./2026-12-07T0200-key-list-order.ts";
import * as autovacuum from "./2026-12-09T0100-autovacuum.ts";

/** Every migration, by name; names sort in the order they must run. */
export const migrations: Record<string, Migration> = {
  "2026-11-27T0000-init": init,
  "2026-11-27T0001-live-key-hash": liveKeyHash,
  "2026-11-27T0002-checkpoint-per-tenant": checkpointPerTenant,
  "2026-11-30T0000-live-tenant-keys": liveTenantKeys,
  "2026-12-07T0200-key-list-order": keyListOrder,
  "2026-12-09T0100-autovacuum": autovacuum,
};
