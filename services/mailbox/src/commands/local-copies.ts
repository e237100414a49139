import { sql, type Kysely } from "kysely";
import { BatchReads } from "@mam/service-kit/batch-reads.ts";
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

/** A send whose recipients' claims are read with its batch's (see BatchReads). */
export interface CopiesKey {
  messageId: string;
  tenantId: string;
  workspaceId: string;
  recipients: string[];
}

interface ClaimRow {
  address: string;
  workspace_id: string;
  inbox_id: string;
  known: boolean;
  live: boolean;
}

/**
 * The claims of the batch's recipients in their senders' workspaces, of the tenant whose lock
 * the transaction holds, with whether each inbox is in the read model and takes mail: one
 * statement for every send of the batch.
 */
async function readClaims(tx: Kysely<MailboxDb>, keys: CopiesKey[]): Promise<Map<string, ClaimRow[]>> {
  const addresses = [...new Set(keys.flatMap((k) => k.recipients))];
  const workspaces = [...new Set(keys.map((k) => k.workspaceId))];
  // One tenant's: its lock is the transaction's (BatchReads reads the keys of the tenant whose batch it is).
  const tenantId = keys[0]!.tenantId;
  const { rows } = await sql<ClaimRow>`
    select c.address, c.workspace_id, c.inbox_id, i.inbox_id is not null as known,
      coalesce(i.deleted_at is null and not exists (select 1 from closed_workspaces w where w.workspace_id = i.workspace_id), false) as live
    from address_claims c
    left join inboxes i on i.workspace_id = c.workspace_id and i.inbox_id = c.inbox_id
    where c.address = any(${addresses}::text[]) and c.tenant_id = ${tenantId} and c.workspace_id = any(${workspaces}::uuid[])`.execute(tx);
  return new Map(keys.map((k) => [k.messageId, rows.filter((r) => r.workspace_id === k.workspaceId && k.recipients.includes(r.address))]));
}

/** The claims reads of group-committed sends: one per batch (see BatchReads). */
export const localCopyReads = () => new BatchReads<CopiesKey, ClaimRow[]>({ idOf: (k) => k.messageId, read: readClaims });

/** The key of a send's copies: its recipients, each once, in lower case. */
export const copiesKeyOf = (inbox: SendingInbox, c: SendCommand): CopiesKey => ({
  messageId: c.facts.messageId,
  tenantId: inbox.tenant_id,
  workspaceId: inbox.workspace_id,
  recipients: [...new Set(c.recipients.map((r) => r.toLowerCase()))],
});

/**
 * Read under the sender's tenant lock with the rest of the send's state: the recipients'
 * claims in the sender's workspace (with the batch's, see readClaims), and for a reply the
 * messages of those inboxes it may thread with. None when no recipient is such an inbox, or
 * when an inbox is not in the read model (a rebuild): the worker then delivers as before.
 */
export async function loadLocalCopies(
  tx: Kysely<MailboxDb>,
  reads: BatchReads<CopiesKey, ClaimRow[]>,
  inbox: SendingInbox,
  c: SendCommand,
): Promise<LocalCopies | undefined> {
  const rows = await reads.of(tx, inbox.tenant_id, copiesKeyOf(inbox, c));
  if (!rows.length || rows.some((r) => !r.known)) return undefined;
  // Only copies for inboxes that take mail are filed and recorded here. (A claim outlives no
  // inbox: it is released with InboxDeleted. Were one left, its recipient would stay pending
  // for the worker, whose filing finds the inbox gone and records a bounce.)
  const live = rows.filter((r) => r.live);
  if (!live.length) return undefined;
  const owner = { tenantId: inbox.tenant_id, workspaceId: inbox.workspace_id };
  const { messageId: _m, inboxId: _i, threadId: _t, ...facts } = c.facts;
  const targets = [...new Set(live.map((r) => r.inbox_id))];
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
  const liveInboxes = new Map(live.map((r) => [r.inbox_id, inbox.workspace_id]));
  const record = outcomeRecord({ tenantId: inbox.tenant_id, workspaceId: inbox.workspace_id, messageId: c.facts.messageId }, "MessageDelivered", {
    recipients: live.map((r) => r.address),
    via: "local",
  });
  return { command, state: { ...parents, liveInboxes, closedWorkspaces: new Set() }, record };
}

/** The copies' events and their delivery's, after the send's own (the message they follow is new: its version is 1). */
export function decideLocalCopies(local: LocalCopies): EventDraft[] {
  return [...decideFiling(local.command, local.state), ...decideRecord(local.record, noDeliveries())];
}
