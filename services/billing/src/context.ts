import type { CommandContext } from "@mam/service-kit/commands.ts";
import type { BillingConfig } from "./config.ts";
import type { BillingDb } from "./db/schema.ts";

/** What every query and worker of billing needs. */
export interface BillingContext extends CommandContext<BillingDb> {
  cfg: BillingConfig;
}
