import { MAILBOX_CONTEXT, type MailboxEnvelope, type MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import { commandExecutor, type EventDraft as Draft, type Sequenced } from "@mam/service-kit/event-sourcing.ts";
import type { MailboxDb } from "../db/schema.ts";
import { applyMailboxEvents } from "../projections/mailbox-read-model.ts";

export type { CommandMeta } from "@mam/service-kit/event-sourcing.ts";
export type EventDraft = Draft<MailboxEvent>;

/** Mailbox commands are serialised per tenant; addresses are decided by their unique key. */
export const execute = commandExecutor<MailboxDb, MailboxEvent>({
  context: MAILBOX_CONTEXT,
  apply: (tx, events) => applyMailboxEvents(tx, events as unknown as Sequenced<MailboxEnvelope>[]),
});
