import { ZodError } from "zod";
import { DurableConsumer, RetryLater } from "@mam/bus/consumer.ts";
import { contextEventsFilter } from "@mam/contracts/envelope.ts";
import { MAILBOX_CONTEXT, parseMailboxEvent, type MailboxEnvelope } from "@mam/contracts/mailbox-events.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import type { MailboxContext } from "../context.ts";
import { groupCommit, type CommandMeta } from "../commands/execute.ts";
import { getBlobs } from "../store/blobs.ts";
import { Filer, type Target } from "./receive.ts";
import type { Outbound } from "./outbound.ts";

export const DELIVERY_DURABLE = "mailbox-delivery";
const SYSTEM: CommandMeta = { actor: { type: "system", id: "delivery" }, requestId: "delivery" };

type Sent = Extract<MailboxEnvelope, { type: "MessageSent" }>;

/** Local copies at a time for one sent message: each holds the message's bytes until filed. */
const LOCAL_COPIES_IN_FLIGHT = 4;

/** Copies for inboxes of this platform, with no SMTP round trip; the bytes are read once. */
async function deliverLocally(ctx: MailboxContext, filer: Filer, e: Sent, targets: Target[]) {
  if (!targets.length) return;
  const f = e.data;
  const hashes = [f.rawHash, f.plainHash, f.htmlHash, ...f.attachments.map((a) => a.hash)].filter((h): h is string => !!h);
  const blobs = [...(await getBlobs(ctx.db, e.workspaceId!, hashes)).values()];
  const { messageId: _m, inboxId: _i, threadId: _t, ...facts } = f;
  const queue = [...targets];
  await Promise.all(
    Array.from({ length: Math.min(LOCAL_COPIES_IN_FLIGHT, queue.length) }, async () => {
      for (let target = queue.shift(); target; target = queue.shift()) {
        // Within the sender's workspace the bytes are stored already.
        const copy = target.workspace_id === e.workspaceId ? [] : blobs;
        await filer.file(target, facts, copy, { dedupeParts: ["local", f.messageId], sourceMessageId: f.messageId });
      }
    }),
  );
}

type Records = ReturnType<typeof groupCommit>;

/** Delivered and bounced are recorded through group commit: a burst of sends makes a burst of these. */
async function record(ctx: MailboxContext, records: Records, e: Sent, type: "MessageDelivered" | "MessageBounced", data: object) {
  await records.run(e.tenantId!, SYSTEM, async (tx) => {
    const current = await tx.selectFrom("messages").select("version").where("workspace_id", "=", e.workspaceId!).where("message_id", "=", e.data.messageId).executeTakeFirst();
    return {
      events: [
        {
          event: { type, schemaVersion: 1, data: { messageId: e.data.messageId, ...data } } as never,
          tenantId: e.tenantId,
          workspaceId: e.workspaceId,
          aggregateId: e.data.messageId,
          aggregateVersion: (current?.version ?? 1) + 1,
        },
      ],
      result: undefined,
    };
  });
}

/**
 * Delivers each sent message: locally where the address is ours, through Outbound elsewhere.
 * Each recipient's outcome is recorded as it is known, so a retry (after a greylisting 4xx,
 * an unreachable MX, a crash) goes only to the recipients still without one: nobody gets
 * a message twice because somebody else's server said "later".
 */
async function deliver(ctx: MailboxContext, filer: Filer, records: Records, outbound: Outbound, e: Sent, attempt: number): Promise<void> {
  const f = e.data;
  const ws = e.workspaceId!;
  const mine = await ctx.db.selectFrom("messages").select(["status"]).where("workspace_id", "=", ws).where("message_id", "=", f.messageId).executeTakeFirst();
  // Not committed yet by the command that sent it: throwing makes the consumer try again shortly.
  if (!mine) throw new Error(`message ${f.messageId} not visible yet`);
  const done = new Set(
    (await ctx.db.selectFrom("delivery_outcomes").select("recipient").where("workspace_id", "=", ws).where("message_id", "=", f.messageId).execute()).map((r) => r.recipient),
  );
  // Settled before outcomes were kept per recipient.
  if (mine.status !== "sent" && !done.size) return;
  const pending = [...new Set([...f.to, ...f.cc, ...f.bcc].map((r) => r.toLowerCase()))].filter((r) => !done.has(r));
  if (!pending.length) return;

  const claims = await ctx.db.selectFrom("address_claims").selectAll().where("address", "in", pending).execute();
  if (claims.length) {
    await deliverLocally(ctx, filer, e, [...new Map(claims.map((c) => [c.inbox_id, c])).values()]);
    await record(ctx, records, e, "MessageDelivered", { recipients: claims.map((c) => c.address), via: "local" });
  }
  const external = pending.filter((r) => !claims.some((c) => c.address === r));
  if (!external.length) return;

  const raw = (await getBlobs(ctx.db, ws, [f.rawHash])).get(f.rawHash)!;
  const r = await outbound.send(f.from.address, external, raw);
  if (r.delivered.length) await record(ctx, records, e, "MessageDelivered", { recipients: r.delivered, via: ctx.cfg.SMTP_RELAY_URL ? "relay" : "mx" });
  for (const b of r.rejected) await record(ctx, records, e, "MessageBounced", { recipients: b.recipients, reason: b.reason.slice(0, 1000) });
  if (!r.deferred.length) return;
  // Tried again on the schedule (minutes, then hours) until the message is too old: then it bounces.
  const ageS = (ctx.clock().getTime() - Date.parse(e.occurredAt)) / 1000;
  const reasons = r.deferred.map((d) => d.reason).join("; ");
  if (ageS < ctx.cfg.DELIVERY_GIVE_UP_AFTER_S) {
    const delays = ctx.cfg.DELIVERY_RETRY_DELAYS_S;
    throw new RetryLater(reasons.slice(0, 500), delays[Math.min(attempt - 1, delays.length - 1)]! * 1000);
  }
  for (const d of r.deferred) {
    await record(ctx, records, e, "MessageBounced", { recipients: d.recipients, reason: `gave up after ${attempt} attempts over ${Math.round(ageS / 60)} min: ${d.reason}`.slice(0, 1000) });
  }
}

export function deliveryWorker(ctx: MailboxContext, backbone: Backbone<any>, outbound: Outbound): DurableConsumer {
  const filer = new Filer(ctx);
  const records = groupCommit(ctx);
  return new DurableConsumer({
    bus: backbone.bus,
    stream: backbone.stream,
    durable: DELIVERY_DURABLE,
    filterSubject: contextEventsFilter(ctx.bus.prefix, MAILBOX_CONTEXT),
    logger: ctx.logger,
    isPoison: (err) => err instanceof ZodError,
    // Each sent message is delivered on its own: a tenant's burst goes out in parallel (and
    // its local copies and records group-commit) instead of one message after another.
    keyOf: (msg) => String(msg.seq % 32),
    concurrency: 32,
    handle: async (msg) => {
      if (!msg.subject.endsWith(".MessageSent")) return;
      const e = parseMailboxEvent(msg.json());
      if (e.type === "MessageSent") await deliver(ctx, filer, records, outbound, e, msg.info.deliveryCount);
    },
  });
}
