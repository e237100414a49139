import { IDENTITY_CONTEXT, type IdentityEnvelope, type IdentityEvent } from "@mam/contracts/identity-events.ts";
import { commandExecutor, type EventDraft as Draft } from "@mam/service-kit/commands.ts";
import type { Sequenced } from "@mam/service-kit/event-sourcing.ts";
import type { IdentityDb } from "../db/schema.ts";
import { applyIdentityEvents, PROJECTION } from "../projections/identity-read-model.ts";

export type { CommandMeta } from "@mam/service-kit/commands.ts";
export type EventDraft = Draft<IdentityEvent>;

/** Identity's commands are serialised per tenant (or "operator" for operator keys). */
export const execute = commandExecutor<IdentityDb, IdentityEvent>({
  context: IDENTITY_CONTEXT,
  projection: PROJECTION,
  apply: (tx, events) => applyIdentityEvents(tx, events as unknown as Sequenced<IdentityEnvelope>[]),
});
