import type { RecentlyApplied } from "@mam/service-kit/recent.ts";
import type { Kysely } from "kysely";
import type { Bus } from "@mam/bus/connection.ts";
import type { Clock, IdGen } from "@mam/runtime/ids.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import type { IdentityDb } from "./db/schema.ts";

/** What every command, query and projection of identity needs. */
export interface IdentityContext {
  db: Kysely<IdentityDb>;
  bus: Bus;
  logger: Logger;
  clock: Clock;
  newId: IdGen;
  /** Events this process applied inline, for its consumer to skip without a query. */
  recent?: RecentlyApplied;
}
