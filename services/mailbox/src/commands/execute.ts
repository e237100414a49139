import { MAILBOX_CONTEXT, type MailboxEnvelope, type MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { Kysely } from "kysely";
import { commandExecutor, type CommandContext, type EventDraft as Draft } from "@mam/service-kit/commands.ts";
import type { Sequenced } from "@mam/service-kit/event-sourcing.ts";
import { GroupCommit } from "@mam/service-kit/group-commit.ts";
import type { MailboxDb } from "../db/schema.ts";
import { applyMailboxEvents, PROJECTION } from "../projections/mailbox-read-model.ts";
import { enforcePlanLimits } from "./plan-limits.ts";

export type { CommandMeta } from "@mam/service-kit/commands.ts";
export type EventDraft = Draft<MailboxEvent>;

const options = {
  context: MAILBOX_CONTEXT,
  projection: PROJECTION,
  // The plan's limits are checked on what the command adds, after it is applied, under the tenant's lock.
  apply: async (tx: Kysely<MailboxDb>, events: Sequenced<unknown>[]) => {
    const fresh = await applyMailboxEvents(tx, events as Sequenced<MailboxEnvelope>[]);
    await enforcePlanLimits(tx, fresh);
    return fresh;
  },
};

/** Mailbox commands are serialised per tenant; addresses are decided by their unique key. */
export const execute = commandExecutor<MailboxDb, MailboxEvent>(options);

/** Commands of a tenant committed together (see GroupCommit). */
export const groupCommit = (ctx: CommandContext<MailboxDb>) => new GroupCommit<MailboxDb, MailboxEvent>(ctx, options);
