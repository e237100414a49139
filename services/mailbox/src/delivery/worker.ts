import { ZodError } from "zod";
import { DurableConsumer } from "@mam/bus/consumer.ts";
import { addLogContext } from "@mam/runtime/log-context.ts";
import { eventSubject } from "@mam/contracts/envelope.ts";
import { MAILBOX_CONTEXT, parseMailboxEvent, type MailboxEnvelope } from "@mam/contracts/mailbox-events.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import type { MailboxContext } from "../context.ts";
import { groupCommit } from "../commands/execute.ts";
import { getBlobs } from "../store/blobs.ts";
import { Filer, INBOX_GONE_REASON, type OutcomeRecord, type Target } from "./receive.ts";
import type { Outbound } from "./outbound.ts";
import { bounceUnclaimedOfOurs, outcomeRecord, pendingFrom, record, sendOut, settle, type Records, type SentRef } from "./outcomes.ts";
import { DeliveryReads } from "./delivery-reads.ts";
import { watchDelivery } from "./metrics.ts";
import { RetryQueue } from "./retry-queue.ts";

export const DELIVERY_DURABLE = "mailbox-delivery";

type Sent = Extract<MailboxEnvelope, { type: "MessageSent" }>;

/** Local copies at a time for one sent message: each holds the message's bytes until filed. */
const LOCAL_COPIES_IN_FLIGHT = 4;

/**
 * Copies for inboxes of this platform, with no SMTP round trip; the bytes are read once.
 * Resolves with the inboxes that took none (deleted, or their workspace ended, since their
 * claims were read).
 */
async function deliverLocally(ctx: MailboxContext, filer: Filer, e: Sent, targets: Target[], record?: OutcomeRecord): Promise<Set<string>> {
  const gone = new Set<string>();
  if (!targets.length) return gone;
  const f = e.data;
  const hashes = [f.rawHash, f.plainHash, f.htmlHash, ...f.attachments.map((a) => a.hash)].filter((h): h is string => !!h);
  // Only a copy for another workspace needs the bytes: within the sender's they are stored already.
  const blobs = targets.some((t) => t.workspace_id !== e.workspaceId) ? [...(await getBlobs(ctx.db, e.workspaceId!, hashes)).values()] : [];
  const { messageId: _m, inboxId: _i, threadId: _t, ...facts } = f;
  const queue = [...targets];
  await Promise.all(
    Array.from({ length: Math.min(LOCAL_COPIES_IN_FLIGHT, queue.length) }, async () => {
      for (let target = queue.shift(); target; target = queue.shift()) {
        const copy = target.workspace_id === e.workspaceId ? [] : blobs;
        const result = await filer.file(target, facts, copy, { dedupeParts: ["local", f.messageId], sourceMessageId: f.messageId }, record);
        // The inbox ended between reading its claim and filing (the cascade's commit came in between).
        if (result === "inbox gone") {
          gone.add(target.inbox_id);
          ctx.logger.warn({ messageId: f.messageId, inboxId: target.inbox_id }, "local copy for an inbox that no longer takes mail dropped");
        }
      }
    }),
  );
  return gone;
}

const refOf = (e: Sent): SentRef => ({
  tenantId: e.tenantId!,
  workspaceId: e.workspaceId!,
  messageId: e.data.messageId,
  from: e.data.from.address,
  recipients: [...new Set([...e.data.to, ...e.data.cc, ...e.data.bcc].map((r) => r.toLowerCase()))],
  rawHash: e.data.rawHash,
  sentAt: e.occurredAt,
});

/**
 * Delivers each sent message: locally where the address is ours, through Outbound elsewhere.
 * Each recipient's outcome is recorded as it is known; recipients refused for now wait in
 * the retry queue (the event is acknowledged), so a retry goes only to them, and a domain
 * that is down holds up nobody else's mail.
 */
async function deliver(ctx: MailboxContext, filer: Filer, reads: DeliveryReads, records: Records, outbound: Outbound, e: Sent): Promise<void> {
  const m = refOf(e);
  // The message, whether it waits in the retry queue, and its recipients with an outcome.
  const sent = await reads.sentState({ workspaceId: m.workspaceId, messageId: m.messageId });
  // A read model being rebuilt lacks outcomes and address claims not replayed yet: every
  // recipient would look pending, a local one external. Thrown: the event comes back later.
  if (sent.rebuilding) throw new ReadModelRebuilding(m.messageId);
  const mine = sent.value;
  // Not committed yet by the command that sent it: throwing makes the consumer try again shortly.
  if (!mine) throw new Error(`message ${m.messageId} not visible yet`);
  // Already in the retry queue (this event is being delivered again): the queue drives it.
  if (mine.queued) return;
  const pending = pendingFrom(m, mine.status, mine.settled);
  if (!pending.length) return;

  const read = await reads.claimsOf(pending);
  // Each read says whether its own snapshot had a rebuild recorded: none in either means a
  // rebuild emptied nothing they read (it began after them, if at all).
  if (read.rebuilding) throw new ReadModelRebuilding(m.messageId);
  const claims = read.value;
  if (claims.length) {
    const targets = [...new Map(claims.map((c) => [c.inbox_id, c])).values()];
    // One inbox of the sender's tenant (most local mail): the copy and the record in one
    // transaction (a bounce if the inbox is gone by then). Several copies are all filed before
    // their records, in transactions of their own; those whose inbox was gone bounce.
    if (targets.length === 1 && targets[0]!.tenant_id === m.tenantId)
      await deliverLocally(ctx, filer, e, targets, outcomeRecord(m, "MessageDelivered", { recipients: claims.map((c) => c.address), via: "local" }));
    else {
      const gone = await deliverLocally(ctx, filer, e, targets);
      const filed = claims.filter((c) => !gone.has(c.inbox_id)).map((c) => c.address);
      const bounced = claims.filter((c) => gone.has(c.inbox_id)).map((c) => c.address);
      if (filed.length) await record(ctx, records, m, "MessageDelivered", { recipients: filed, via: "local" });
      if (bounced.length) await record(ctx, records, m, "MessageBounced", { recipients: bounced, reason: INBOX_GONE_REASON });
    }
  }
  // An address of the platform's own domain that no inbox holds (never made, or deleted since
  // the send) bounces here, rather than going out to come back.
  const unclaimed = pending.filter((r) => !claims.some((c) => c.address === r));
  const external = await bounceUnclaimedOfOurs(ctx, records, m, unclaimed);
  if (!external.length) return;
  // Not in the retry queue when read (see above): no row of its own to remove.
  await settle(ctx, records, m, await sendOut(ctx, records, outbound, m, external), 1, null, false);
}

/** Retryable: the delivery waits for the read model's rebuild to catch up. */
class ReadModelRebuilding extends Error {
  override name = "ReadModelRebuilding";
  constructor(messageId: string) {
    super(`message ${messageId}: the read model is being rebuilt; its delivery is tried again later`);
  }
}

export function deliveryWorker(ctx: MailboxContext, backbone: Backbone<any>, outbound: Outbound): { consumer: DurableConsumer; retries: RetryQueue } {
  const filer = new Filer(ctx);
  const reads = new DeliveryReads(ctx);
  const records = groupCommit(ctx);
  const retries = new RetryQueue(ctx, records, outbound);
  watchDelivery(ctx, backbone, DELIVERY_DURABLE);
  const consumer = new DurableConsumer({
    bus: backbone.bus,
    stream: backbone.stream,
    durable: DELIVERY_DURABLE,
    // Sent messages only: the mailbox's other events would each be delivered, and acknowledged, for nothing.
    filterSubject: eventSubject(ctx.bus.prefix, { context: MAILBOX_CONTEXT, tenantId: "*", workspaceId: "*", type: "MessageSent" }),
    logger: ctx.logger,
    isPoison: (err) => err instanceof ZodError,
    // Each sent message is delivered on its own: a tenant's burst goes out in parallel (and
    // its local copies and records group-commit) instead of one message after another.
    keyOf: (msg) => String(msg.seq % 32),
    concurrency: 32,
    // A first pass includes an SMTP conversation: minutes, not seconds, before another
    // replica may take the event over (the heartbeat covers the ones being handled).
    ackWaitMs: 5 * 60_000,
    handle: async (msg) => {
      if (!msg.subject.endsWith(".MessageSent")) return;
      const e = parseMailboxEvent(msg.json());
      if (e.type !== "MessageSent") return;
      // Every recipient was delivered in the send's own transaction, committed by this process.
      if (ctx.settledAtSend.take(e.data.messageId)) return;
      // The delivery's lines name the message and the request that sent it (the event's correlation id).
      addLogContext({ messageId: e.data.messageId, requestId: e.correlationId ?? undefined });
      await deliver(ctx, filer, reads, records, outbound, e);
    },
  });
  return { consumer, retries };
}
