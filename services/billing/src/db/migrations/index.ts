import type { Migration } from "kysely";
import * as metrics from "./2026-12-03T0100-metrics.ts";
import * as tenantPlans from "./2026-12-04T0100-tenant-plans.ts";
import * as stripe from "./2026-12-05T0100-stripe.ts";
import * as defaultLimits from "./2026-12-06T0100-default-limits.ts";
import * as autovacuum from "./2026-12-09T0100-autovacuum.ts";

/** Every migration, by name; names sort in the order they must run. */
export const migrations: Record<string, Migration> = {
  "2026-12-03T0100-metrics": metrics,
  "2026-12-04T0100-tenant-plans": tenantPlans,
  "2026-12-05T0100-stripe": stripe,
  "2026-12-06T0100-default-limits": defaultLimits,
  "2026-12-09T0100-autovacuum": autovacuum,
};
