import type { CommandContext } from "@mam/service-kit/commands.ts";
import type { RealtimeConfig } from "./config.ts";
import type { RealtimeDb } from "./db/schema.ts";

/** What every command, query and worker of realtime needs. */
export interface RealtimeContext extends CommandContext<RealtimeDb> {
  cfg: RealtimeConfig;
}
