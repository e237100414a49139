import { sql, type Kysely } from "kysely";
import type { MailboxDb } from "../db/schema.ts";
import { outcomeRecord } from "../delivery/outcomes.ts";
import type { OutcomeRecord } from "../delivery/receive.ts";
import { DECISION_COLUMNS, messagesStateOf } from "../read/messages.ts";
import type { SendingInbox } from "../read/inboxes.ts";
import { decide as decideRecord, initial as noDeliveries } from "./delivery-record-decision.ts";
import type { EventDraft } from "./execute.ts";
import { decide as decideFiling, filingOf, parentHeaders, type FilingCommand, type FilingState } from "./filing-decision.ts";
import { initial as noMessages } from "./message-state.ts";
import type { SendCommand } from "./send-decision.ts";

/**
 * The copies a send files in its own transaction: those for inboxes of the sender's own
 * workspace (their bytes are the sender's, stored already), with the record of their delivery.
 * They are decided as the delivery worker decides them (the same derived ids, the same
 * threading, the same record), so the worker, meeting the sent message later, finds those
 * recipients settled and delivers only to the others: other workspaces and tenants (under
 * their own locks), and the world.
 */
export interface LocalCopies {
  command: FilingCommand;
  state: FilingState;
  record: OutcomeRecord;
}

/**
 * Read under the sender's tenant lock with the rest of the send's state: the recipients'
 * claims in the sender's workspace, whether each inbox takes mail, and, for a reply, the
 * messages of those inboxes it may thread with. None when no recipient is such an inbox, or
 * when an inbox is not in the read model (a rebuild): the worker then delivers as before.
 */
export async function loadLocalCopies(tx: Kysely<MailboxDb>, inbox: SendingInbox, c: SendCommand): Promise<LocalCopies | undefined> {
  const recipients = [...new Set(c.recipients.map((r) => r.toLowerCase()))];
  const { rows } = await sql<{ address: string; inbox_id: string; known: boolean; live: boolean }>`
    select c.address, c.inbox_id, i.inbox_id is not null as known,
      coalesce(i.deleted_at is null and not exists (select 1 from closed_workspaces w where w.workspace_id = i.workspace_id), false) as live
    from address_claims c
    left join inboxes i on i.workspace_id = c.workspace_id and i.inbox_id = c.inbox_id
    where c.address = any(${recipients}::text[]) and c.tenant_id = ${inbox.tenant_id} and c.workspace_id = ${inbox.workspace_id}`.execute(tx);
  if (!rows.length || rows.some((r) => !r.known)) return undefined;
  const owner = { tenantId: inbox.tenant_id, workspaceId: inbox.workspace_id };
  const { messageId: _m, inboxId: _i, threadId: _t, ...facts } = c.facts;
  const targets = [...new Set(rows.map((r) => r.inbox_id))];
  const command: FilingCommand = {
    filings: targets.map((id) => filingOf(owner, id, facts, { dedupeParts: ["local", c.facts.messageId], sourceMessageId: c.facts.messageId })),
  };
  // A new message has no copies yet (its id was made for this send): only a reply's parents are looked for.
  const headers = parentHeaders(command);
  const parents = headers.length
    ? messagesStateOf(
        await tx
          .selectFrom("messages")
          .select(DECISION_COLUMNS)
          .where("workspace_id", "=", inbox.workspace_id)
          .where("inbox_id", "in", targets)
          .where("message_id_header", "in", headers)
          .orderBy("created_at")
          .execute(),
      )
    : noMessages();
  const liveInboxes = new Map(rows.filter((r) => r.live).map((r) => [r.inbox_id, inbox.workspace_id]));
  const record = outcomeRecord({ tenantId: inbox.tenant_id, workspaceId: inbox.workspace_id, messageId: c.facts.messageId }, "MessageDelivered", {
    recipients: rows.map((r) => r.address),
    via: "local",
  });
  return { command, state: { ...parents, liveInboxes, closedWorkspaces: new Set() }, record };
}

/** The copies' events and their delivery's, after the send's own (the message they follow is new: its version is 1). */
export function decideLocalCopies(local: LocalCopies): EventDraft[] {
  return [...decideFiling(local.command, local.state), ...decideRecord(local.record, noDeliveries())];
}
