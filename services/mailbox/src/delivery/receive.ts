import type { Kysely } from "kysely";
import { AppError } from "@mam/contracts/errors.ts";
import { TenantBatches } from "@mam/service-kit/tenant-batches.ts";
import type { Authentication, MessageFacts } from "@mam/contracts/message-events.ts";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import { execute, type CommandMeta } from "../commands/execute.ts";
import { decide, filingOf, parentHeaders, unfileable, type FilingCommand, type FilingState } from "../commands/filing-decision.ts";
import { DECISION_COLUMNS, messagesStateOf } from "../read/messages.ts";
import { putBlobs } from "../store/blobs.ts";
import { decide as decideRecord, type DeliveryRecord } from "../commands/delivery-record-decision.ts";
import { derivedId } from "./ids.ts";
import { countOutcome } from "./metrics.ts";
import { outcomeRecord, readDeliveryState } from "./outcomes.ts";

const SYSTEM: CommandMeta = { actor: { type: "system", id: "delivery" }, requestId: "delivery" };

export interface Target {
  tenant_id: string;
  workspace_id: string;
  inbox_id: string;
}

/** Bytes larger than this are stored on their own before the batch, not inside its statement. */
const INLINE_BLOB_BYTES = 256 * 1024;

interface Filing {
  target: Target;
  blobs: Buffer[];
  facts: Omit<MessageFacts, "messageId" | "inboxId" | "threadId">;
  source: { dedupeParts: string[]; sourceMessageId: string | null; authentication?: Authentication | null };
  /** The sent message's delivery, recorded in the filing's transaction (a copy for an inbox of the sender's tenant). */
  record?: OutcomeRecord;
  done: (err: unknown, result?: FileResult) => void;
}

export type OutcomeRecord = Extract<DeliveryRecord, { kind: "outcome" }>;

/**
 * "filed" (now or before: the same delivery again), or "inbox gone": the inbox was deleted
 * or its workspace ended, and nothing was filed.
 */
export type FileResult = "filed" | "inbox gone";

/** Why a recipient whose inbox was gone by the time its copy was filed got nothing. */
export const INBOX_GONE_REASON = "the inbox was deleted before this message could be filed";

/** The record of a copy that found its inbox gone: its recipients bounced, not delivered. */
export function goneInstead(r: OutcomeRecord): OutcomeRecord {
  const ref = { tenantId: r.owner.tenantId, workspaceId: r.owner.workspaceId, messageId: r.messageId };
  return outcomeRecord(ref, "MessageBounced", { recipients: r.outcome.data.recipients, reason: INBOX_GONE_REASON });
}

const MAX_BATCH = 200;
const MAX_BATCH_BYTES = 8 * 1024 * 1024;

/** How many filings from the head of the queue make one commit: by count and by bytes. */
function batchLength(q: Filing[]): number {
  let bytes = 0;
  let n = 0;
  while (n < q.length && n < MAX_BATCH) {
    bytes += q[n]!.blobs.reduce((sum, b) => sum + b.length, 0);
    if (n > 0 && bytes > MAX_BATCH_BYTES) break;
    n++;
  }
  return n;
}

/**
 * Files inbound messages into inboxes. Filings of one tenant that arrive while another
 * batch of that tenant is being committed wait and are committed together: one lock and one
 * transaction for the lot (group commit), instead of one each.
 * Every message gets an id derived from `dedupeParts` and its inbox, so the same delivery
 * arriving twice leaves one copy.
 */
export class Filer {
  private readonly batches: TenantBatches<Filing>;

  constructor(private readonly ctx: MailboxContext) {
    this.batches = new TenantBatches<Filing>({
      take: batchLength,
      commit: async (tenantId, batch) => {
        const gone = await this.commit(tenantId, batch);
        for (const [i, f] of batch.entries()) f.done(undefined, gone.has(i) ? "inbox gone" : "filed");
      },
      // A failure the service itself reports (an AppError) is the same for each filing, so
      // not worth one try each. (A filing decided again makes the same event: its id is derived.)
      retryAlone: (err) => !(err instanceof AppError),
      fail: (f, err) => f.done(err),
    });
  }

  /**
   * Files a copy. With `record` (the delivery of a message sent by the target's tenant), the
   * delivery is recorded in the same transaction: the copy and the record commit together,
   * and a send to a local inbox costs one transaction less.
   */
  async file(target: Target, facts: Filing["facts"], blobs: Buffer[], source: Filing["source"], record?: OutcomeRecord): Promise<FileResult> {
    if (record && record.owner.tenantId !== target.tenant_id) throw new Error("a delivery is recorded with a copy for its own tenant only");
    // Content-addressed and idempotent: large bytes are stored first, on their own; the
    // rest go into the batch's transaction, one statement for all of them.
    const small: Buffer[] = [];
    // Large bytes for an inbox that takes no mail would be stored for nobody: checked outside
    // the lock (an inbox never comes back: gone now, gone at the commit too) and then left
    // out. The filing still goes to its batch, which tells a copy stored before from none and
    // records the delivery that goes with it.
    const gone =
      blobs.some((b) => b.length > INLINE_BLOB_BYTES) &&
      (await liveInboxesOf(this.ctx.db, target.tenant_id, [target.inbox_id])).get(target.inbox_id) !== target.workspace_id;
    for (const data of blobs) {
      if (data.length <= INLINE_BLOB_BYTES) small.push(data);
      else if (!gone) await putBlobs(this.ctx.db, [{ workspaceId: target.workspace_id, data }], this.ctx.clock());
    }
    const result = await new Promise<FileResult>((resolve, reject) =>
      this.batches.add(target.tenant_id, { target, blobs: small, facts, source, record, done: (err, result) => (err ? reject(err) : resolve(result!)) }),
    );
    if (record) countOutcome(result === "filed" ? "delivered" : "bounced", record.outcome.data.recipients.length);
    // The copy's id is the one filingOf derives; worked out only when someone reads debug lines.
    if (this.ctx.logger.isLevelEnabled("debug"))
      this.ctx.logger.debug({ inboxId: target.inbox_id, filedMessageId: derivedId(...source.dedupeParts, target.inbox_id), result }, "filed");
    return result;
  }

  /** Commits a batch; resolves with the positions of the filings whose inbox took no mail. */
  private commit(tenantId: string, batch: Filing[]): Promise<Set<number>> {
    const command: FilingCommand = {
      filings: batch.map((f) => filingOf({ tenantId: f.target.tenant_id, workspaceId: f.target.workspace_id }, f.target.inbox_id, f.facts, f.source)),
    };
    const records = batch.flatMap((f) => (f.record ? [f.record] : []));
    const at = this.ctx.clock();
    return execute(this.ctx, tenantId, SYSTEM, {
      load: async (tx) => ({
        filing: await loadFiling(tx, tenantId, command),
        // The sent messages whose delivery is recorded here (a record decides only about its own message).
        delivery: records.length
          ? await readDeliveryState(
              tx,
              records.map((r) => ({ workspaceId: r.owner.workspaceId, messageId: r.messageId })),
            )
          : undefined,
      }),
      decide: (state) => {
        // A copy whose inbox is gone by now, and that was not stored before, is recorded
        // bounced: the sender is not told it was delivered.
        const gone = goneFilings(command, state.filing);
        const recorded = batch.flatMap((f, i) => (f.record ? [gone.has(command.filings[i]!) ? goneInstead(f.record) : f.record] : []));
        return [...decide(command, state.filing), ...recorded.flatMap((r) => decideRecord(r, state.delivery!))];
      },
      answer: async (tx, { filing: state }) => {
        // The bytes of mail for an inbox that takes none are not kept (in a workspace that
        // ended, nothing could read them), a copy stored before included.
        const notTaking = new Set(unfileable(command, state));
        await storeBytes(
          tx,
          batch.filter((_, i) => !notTaking.has(command.filings[i]!)),
          at,
        );
        const gone = goneFilings(command, state);
        return new Set(command.filings.flatMap((f, i) => (gone.has(f) ? [i] : [])));
      },
      // The ingest consumer needs the filing committed, not published: the next batch of
      // this tenant need not wait for the relay.
      awaitPublish: false,
    });
  }
}

/** Filings for an inbox that takes no mail, of copies not stored before ("inbox gone"; one stored before is "filed"). */
const goneFilings = (c: FilingCommand, state: FilingState): Set<FilingCommand["filings"][number]> =>
  new Set(unfileable(c, state).filter((f) => !state.messages.has(f.messageId)));

/**
 * The batch's inboxes that take mail (live, their workspace not closed), read under the
 * tenant's lock, so a filing after the workspace-deletion cascade committed sees its end.
 * An inbox with no row at all is not "gone": mail reaches the door only for addresses the
 * mailbox published, after their row was committed, so a missing row means this read model
 * is being rebuilt (or lags): the filing fails, to be tried again, rather than drop mail that
 * was answered 250.
 */
async function liveInboxesOf(tx: Kysely<MailboxDb>, tenantId: string, inboxes: string[]): Promise<Map<string, string>> {
  const rows = await tx
    .selectFrom("inboxes")
    .select(["inbox_id", "workspace_id", "deleted_at"])
    .select(({ exists, selectFrom }) =>
      exists(
        selectFrom("closed_workspaces").select("closed_workspaces.workspace_id").whereRef("closed_workspaces.workspace_id", "=", "inboxes.workspace_id"),
      ).as("closed"),
    )
    .where("tenant_id", "=", tenantId)
    .where("inbox_id", "in", inboxes)
    .execute();
  const known = new Set(rows.map((r) => r.inbox_id));
  const missing = inboxes.filter((i) => !known.has(i));
  if (missing.length) throw new InboxNotInReadModel(missing);
  return new Map(rows.filter((r) => r.deleted_at === null && !r.closed).map((r) => [r.inbox_id, r.workspace_id]));
}

/** Retryable: the inbox is not in the read model (yet, or again after a rebuild). */
export class InboxNotInReadModel extends Error {
  override name = "InboxNotInReadModel";
  constructor(readonly inboxIds: string[]) {
    super(`inbox ${inboxIds.join(", ")} is not in the read model yet; the filing is tried again`);
  }
}

/**
 * The batch's live inboxes; its messages stored already, and those its messages answer (for
 * their threads), oldest first.
 */
async function loadFiling(tx: Kysely<MailboxDb>, tenantId: string, c: FilingCommand): Promise<FilingState> {
  const workspaces = [...new Set(c.filings.map((f) => f.owner.workspaceId))];
  const inboxes = [...new Set(c.filings.map((f) => f.inboxId))];
  const liveInboxes = await liveInboxesOf(tx, tenantId, inboxes);
  const headers = parentHeaders(c);
  const rows = await tx
    .selectFrom("messages")
    .select(DECISION_COLUMNS)
    .where("workspace_id", "in", workspaces)
    .where((eb) =>
      eb.or([
        eb(
          "message_id",
          "in",
          c.filings.map((f) => f.messageId),
        ),
        ...(headers.length ? [eb.and([eb("inbox_id", "in", inboxes), eb("message_id_header", "in", headers)])] : []),
      ]),
    )
    .orderBy("created_at")
    .execute();
  // Only live inboxes are read: closed workspaces need not be listed.
  return { ...messagesStateOf(rows), liveInboxes, closedWorkspaces: new Set() };
}

/**
 * The batch's bytes, one statement for all of them, written by the answer: the transaction
 * that records the events (in the outbox) stores them too, so no event is published without
 * its bytes, and nothing is written before the decision. Bytes are content-addressed and
 * idempotent: those of a message filed before cost nothing.
 */
function storeBytes(tx: Kysely<MailboxDb>, batch: Filing[], at: Date): Promise<void> {
  return putBlobs(
    tx,
    batch.flatMap((f) => f.blobs.map((data) => ({ workspaceId: f.target.workspace_id, data }))),
    at,
  );
}
