import { sql, type Kysely } from "kysely";
import { BatchReads } from "@mam/service-kit/batch-reads.ts";
import type { MailboxContext } from "../context.ts";
import { decide, type DeliveryRecord, type DeliveryState, type Outcome } from "../commands/delivery-record-decision.ts";
import type { groupCommit, CommandMeta } from "../commands/execute.ts";
import type { MailboxDb, Unrecorded } from "../db/schema.ts";
import { DECISION_COLUMNS, messagesStateOf } from "../read/messages.ts";
import { getBlobs } from "../store/blobs.ts";
import { derivedId } from "./ids.ts";
import { countOutcome } from "./metrics.ts";
import { returnPaths } from "./return-path.ts";
import type { Outbound, Refusal } from "./outbound.ts";

const SYSTEM: CommandMeta = { actor: { type: "system", id: "delivery" }, requestId: "delivery" };

export type Records = ReturnType<typeof groupCommit>;

/** The sent message a delivery step is about. */
export interface SentRef {
  tenantId: string;
  workspaceId: string;
  messageId: string;
  from: string;
  recipients: string[];
  rawHash: string;
  sentAt: string;
}

/** What a delivery record is decided against: the message, and those of its recipients bounced already. */
export async function loadDeliveryState(tx: Kysely<MailboxDb>, workspaceId: string, messageId: string): Promise<DeliveryState> {
  return (await readDeliveryStates(tx, [{ workspaceId, messageId }])).get(messageId)!;
}

interface MessageKey {
  workspaceId: string;
  messageId: string;
}

/**
 * The delivery state of several messages, with two statements whatever their number: one
 * state holding them all (a record decides only about its own message).
 */
export async function readDeliveryState(tx: Kysely<MailboxDb>, keys: MessageKey[]): Promise<DeliveryState> {
  const byWorkspace = new Map<string, string[]>();
  for (const k of keys) byWorkspace.set(k.workspaceId, [...(byWorkspace.get(k.workspaceId) ?? []), k.messageId]);
  const groups = [...byWorkspace];
  const rows = await tx
    .selectFrom("messages")
    .select(DECISION_COLUMNS)
    .where((eb) => eb.or(groups.map(([ws, ids]) => eb.and([eb("workspace_id", "=", ws), eb("message_id", "in", ids)]))))
    .execute();
  const bouncedRows = await tx
    .selectFrom("delivery_outcomes")
    .select(["message_id", "recipient"])
    .where((eb) => eb.or(groups.map(([ws, ids]) => eb.and([eb("workspace_id", "=", ws), eb("message_id", "in", ids)]))))
    .where("outcome", "=", "bounced")
    .execute();
  const bounced = new Map(keys.map((k) => [k.messageId, new Set<string>()]));
  for (const r of bouncedRows) bounced.get(r.message_id)?.add(r.recipient);
  return { ...messagesStateOf(rows), bounced };
}

/** readDeliveryState, as each of its messages' record reads it. */
async function readDeliveryStates(tx: Kysely<MailboxDb>, keys: MessageKey[]): Promise<Map<string, DeliveryState>> {
  const state = await readDeliveryState(tx, keys);
  return new Map(keys.map((k) => [k.messageId, state]));
}

/** The delivery states of a tenant's group-committed records, one read per batch (see BatchReads). */
const deliveryReads = new WeakMap<Records, BatchReads<MessageKey, DeliveryState>>();
function readsOf(records: Records) {
  let r = deliveryReads.get(records);
  if (!r) deliveryReads.set(records, (r = new BatchReads<MessageKey, DeliveryState>({ idOf: (k) => k.messageId, read: readDeliveryStates })));
  return r;
}

/** The record of what became of some recipients; its event id is derived from its content, so recording it again changes nothing. */
export function outcomeRecord(
  m: Pick<SentRef, "tenantId" | "workspaceId" | "messageId">,
  type: "MessageDelivered" | "MessageBounced",
  data: { recipients: string[]; via?: string; reason?: string },
): Extract<DeliveryRecord, { kind: "outcome" }> {
  return {
    kind: "outcome",
    owner: { tenantId: m.tenantId, workspaceId: m.workspaceId },
    messageId: m.messageId,
    outcome: { type, schemaVersion: 1, data: { messageId: m.messageId, ...data } } as Outcome,
    eventId: derivedId("event", m.messageId, type, ...[...data.recipients].sort()),
  };
}

/** Why a recipient at the platform's own domain bounced: no inbox has its address. */
export const NO_SUCH_INBOX_REASON = "5.1.1 no inbox has this address";

/**
 * Of recipients no inbox claims, those of MAIL_DOMAIN bounce here (that domain has no mail
 * anywhere else: sent out, they would only come back); the others, to be sent out, are returned.
 */
export async function bounceUnclaimedOfOurs(ctx: MailboxContext, records: Records, m: SentRef, unclaimed: string[]): Promise<string[]> {
  const suffix = `@${ctx.cfg.MAIL_DOMAIN.toLowerCase()}`;
  const ours = unclaimed.filter((r) => r.toLowerCase().endsWith(suffix));
  if (!ours.length) return unclaimed;
  await record(ctx, records, m, "MessageBounced", { recipients: ours, reason: NO_SUCH_INBOX_REASON });
  return unclaimed.filter((r) => !ours.includes(r));
}

/**
 * Records what became of some recipients, through group commit (a burst of sends makes a
 * burst of these). The event id is derived from its content, and a failure is retried in
 * place a few times: once a server said 250, losing the record would mean sending again.
 */
export async function record(
  _ctx: MailboxContext,
  records: Records,
  m: SentRef,
  type: "MessageDelivered" | "MessageBounced",
  data: { recipients: string[]; via?: string; reason?: string },
) {
  const c = outcomeRecord(m, type, data);
  for (const pause of [200, 1_000, 3_000, 0]) {
    try {
      const reads = readsOf(records);
      const key = { workspaceId: m.workspaceId, messageId: m.messageId };
      await reads.during(m.tenantId, key, () =>
        records.run(m.tenantId, SYSTEM, {
          load: (tx) => reads.of(tx, m.tenantId, key),
          decide: (state) => decide(c, state),
          answer: async () => undefined,
        }),
      );
      countOutcome(type === "MessageDelivered" ? "delivered" : "bounced", data.recipients.length);
      return;
    } catch (err) {
      if (!pause) throw err;
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}

/** Recipients of the message with no outcome yet (recorded or waiting to be); none when it was settled before outcomes were kept. */
export async function pendingOf(ctx: MailboxContext, m: SentRef, status: string, unrecorded: Unrecorded[] = []): Promise<string[]> {
  const settled = await ctx.db
    .selectFrom("delivery_outcomes")
    .select("recipient")
    .where("workspace_id", "=", m.workspaceId)
    .where("message_id", "=", m.messageId)
    .execute();
  return pendingFrom(
    m,
    status,
    settled.map((r) => r.recipient),
    unrecorded,
  );
}

/** pendingOf, given the recipients whose outcome is recorded (`settled`). */
export function pendingFrom(m: SentRef, status: string, settled: string[], unrecorded: Unrecorded[] = []): string[] {
  if (status !== "sent" && !settled.length && !unrecorded.length) return [];
  const done = new Set(settled);
  for (const u of unrecorded) for (const r of u.recipients) done.add(r);
  return m.recipients.filter((r) => !done.has(r));
}

/** Records outcomes; those that cannot be recorded now (the database is unreachable) are handed back. */
export async function recordAll(ctx: MailboxContext, records: Records, m: SentRef, outcomes: Unrecorded[]): Promise<Unrecorded[]> {
  const left: Unrecorded[] = [];
  for (const o of outcomes) {
    const { type, ...data } = o;
    try {
      await record(ctx, records, m, type, data);
    } catch (err) {
      ctx.logger.warn({ err, messageId: m.messageId, type }, "could not record a delivery outcome yet; kept to record later");
      left.push(o);
    }
  }
  return left;
}

export interface Try {
  deferred: Refusal[];
  /** Outcomes the servers gave that are not recorded yet: never to be sent again. */
  unrecorded: Unrecorded[];
}

/** Offers the message to the relay or the recipients' MX and records each outcome. */
export async function sendOut(ctx: MailboxContext, records: Records, outbound: Outbound, m: SentRef, external: string[]): Promise<Try> {
  const raw = (await getBlobs(ctx.db, m.workspaceId, [m.rawHash])).get(m.rawHash);
  if (!raw) throw new Error(`raw bytes of message ${m.messageId} missing`);
  // The envelope sender is the message's own return path, not its From: a bounce comes back
  // to an address that names the message, and that nobody else can make up.
  const returnPath = (await returnPaths(ctx)).address(m.messageId);
  ctx.logger.debug({ messageId: m.messageId, recipients: external.length, via: outbound.via }, "delivery attempt");
  const r = await outbound.send(returnPath, external, raw);
  countOutcome("deferred", r.deferred.flatMap((d) => d.recipients).length);
  // Said where an operator looks: a failure nobody sees looks like "sent" (reasons hold no secrets).
  for (const d of r.deferred) ctx.logger.warn({ messageId: m.messageId, recipients: d.recipients, reason: d.reason, via: outbound.via }, "delivery deferred");
  for (const b of r.rejected) ctx.logger.warn({ messageId: m.messageId, recipients: b.recipients, reason: b.reason, via: outbound.via }, "delivery refused");
  const outcomes: Unrecorded[] = [
    ...(r.delivered.length ? [{ type: "MessageDelivered" as const, recipients: r.delivered, via: outbound.via }] : []),
    ...r.rejected.map((b) => ({ type: "MessageBounced" as const, recipients: b.recipients, reason: b.reason.slice(0, 1000) })),
  ];
  return { deferred: r.deferred, unrecorded: await recordAll(ctx, records, m, outcomes) };
}

/**
 * What is left after a try: nothing (the row goes), a bounce of the deferred when the
 * message is too old to keep trying, or the next look in the queue. With a lease, only the
 * holder of the lease may change the row. A first pass (no lease) that found the message in
 * no row (`queued` false) has no row to remove when nothing is left; one that another first
 * pass of the same event made meanwhile holds that pass's deferred recipients, and stays.
 */
export async function settle(ctx: MailboxContext, records: Records, m: SentRef, t: Try, attempts: number, lease: string | null, queued = true): Promise<void> {
  let { deferred, unrecorded } = t;
  const ageS = (ctx.clock().getTime() - Date.parse(m.sentAt)) / 1000;
  if (deferred.length && ageS >= ctx.cfg.DELIVERY_GIVE_UP_AFTER_S) {
    ctx.logger.warn({ messageId: m.messageId, attempts, reasons: deferred.map((d) => d.reason) }, "delivery given up: the deferred recipients bounce");
    const bounces = deferred.map((d) => ({
      type: "MessageBounced" as const,
      recipients: d.recipients,
      reason: `gave up after ${attempts} attempts over ${Math.round(ageS / 60)} min: ${d.reason}`.slice(0, 1000),
    }));
    unrecorded = [...unrecorded, ...(await recordAll(ctx, records, m, bounces))];
    deferred = [];
  }
  if (!deferred.length && !unrecorded.length) {
    if (!lease && !queued) return;
    const row = ctx.db.deleteFrom("delivery_queue").where("workspace_id", "=", m.workspaceId).where("message_id", "=", m.messageId);
    await (lease ? row.where("lease", "=", lease) : row.where("lease", "is", null)).execute();
    return;
  }
  const delays = ctx.cfg.DELIVERY_RETRY_DELAYS_S;
  // Only outcomes to record: look again soon. Computed by the database's clock, as the lease is.
  const waitS = deferred.length ? delays[Math.min(attempts - 1, delays.length - 1)]! : 10;
  const next = sql<Date>`now() + make_interval(secs => ${waitS})`;
  const lastError = (deferred.map((d) => d.reason).join("; ") || "outcomes not recorded yet").slice(0, 1000);
  const json = JSON.stringify(unrecorded);
  const waiting = JSON.stringify(deferred.map((d) => ({ recipients: d.recipients, reason: d.reason.slice(0, 1000) })));
  if (lease) {
    // The holder read the row's outcomes and settles them all; without the lease (it ran
    // out, another replica has the row) nothing is written, and a deleted row stays deleted.
    await ctx.db
      .updateTable("delivery_queue")
      .set({ attempts, next_try_at: next, last_error: lastError, lease: null, unrecorded: json, deferred: waiting })
      .where("workspace_id", "=", m.workspaceId)
      .where("message_id", "=", m.messageId)
      .where("lease", "=", lease)
      .execute();
    return;
  }
  await ctx.db
    .insertInto("delivery_queue")
    .values({
      workspace_id: m.workspaceId,
      message_id: m.messageId,
      tenant_id: m.tenantId,
      attempts,
      next_try_at: next,
      last_error: lastError,
      lease: null,
      unrecorded: json,
      deferred: waiting,
    })
    // A first pass meeting a row (another first pass of the same event) only adds the
    // outcomes it could not record: the row's own schedule and holder stay.
    .onConflict((oc) => oc.columns(["workspace_id", "message_id"]).doUpdateSet({ unrecorded: sql<string>`delivery_queue.unrecorded || excluded.unrecorded` }))
    .execute();
}
