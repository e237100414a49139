import { REALTIME_CONTEXT, type RealtimeEnvelope, type RealtimeEvent } from "@mam/contracts/realtime-events.ts";
import { commandExecutor } from "@mam/service-kit/commands.ts";
import type { Sequenced } from "@mam/service-kit/event-sourcing.ts";
import type { RealtimeDb } from "../db/schema.ts";
import { applyRealtimeEvents, PROJECTION } from "./projection.ts";

export type { CommandMeta } from "@mam/service-kit/commands.ts";

/** Realtime's commands are serialised per tenant: the webhook cap is decided under that lock. */
export const execute = commandExecutor<RealtimeDb, RealtimeEvent>({
  context: REALTIME_CONTEXT,
  projection: PROJECTION,
  apply: (tx, events) => applyRealtimeEvents(tx, events as unknown as Sequenced<RealtimeEnvelope>[]),
});
