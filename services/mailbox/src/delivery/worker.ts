import { ZodError } from "zod";
import { DurableConsumer } from "@mam/bus/consumer.ts";
import { contextEventsFilter } from "@mam/contracts/envelope.ts";
import { MAILBOX_CONTEXT, parseMailboxEvent, type MailboxEnvelope } from "@mam/contracts/mailbox-events.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import type { MailboxContext } from "../context.ts";
import { groupCommit, type CommandMeta } from "../commands/execute.ts";
import { getBlobs } from "../store/blobs.ts";
import { Filer, type Target } from "./receive.ts";
import { TransientDeliveryError, type Outbound } from "./outbound.ts";

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

/** Delivers each sent message: locally where the address is ours, through Outbound elsewhere. */
async function deliver(ctx: MailboxContext, filer: Filer, records: Records, outbound: Outbound, e: Sent, attempt: number): Promise<void> {
  const f = e.data;
  const mine = await ctx.db.selectFrom("messages").select(["status"]).where("workspace_id", "=", e.workspaceId!).where("message_id", "=", f.messageId).executeTakeFirst();
  // Not committed yet by the command that sent it: throwing makes the consumer try again shortly.
  if (!mine) throw new Error(`message ${f.messageId} not visible yet`);
  if (mine.status !== "sent") return;

  const recipients = [...new Set([...f.to, ...f.cc, ...f.bcc])];
  const claims = await ctx.db.selectFrom("address_claims").selectAll().where("address", "in", recipients).execute();
  const local = new Map(claims.map((c) => [c.inbox_id, c]));
  await deliverLocally(ctx, filer, e, [...local.values()]);

  const external = recipients.filter((r) => !claims.some((c) => c.address === r));
  const delivered = claims.map((c) => c.address);
  let via: "local" | "relay" | "mx" = "local";
  if (external.length) {
    const raw = (await getBlobs(ctx.db, e.workspaceId!, [f.rawHash])).get(f.rawHash)!;
    let r;
    try {
      r = await outbound.send(f.from.address, external, raw);
    } catch (err) {
      // Retried with backoff by the consumer until the last attempt, which bounces.
      if (!(err instanceof TransientDeliveryError) || attempt < ctx.cfg.DELIVERY_MAX_ATTEMPTS) throw err;
      r = { delivered: [], rejected: [{ recipients: external, reason: `gave up after ${attempt} attempts: ${err.message}` }] };
    }
    delivered.push(...r.delivered);
    via = ctx.cfg.SMTP_RELAY_URL ? "relay" : "mx";
    for (const b of r.rejected) await record(ctx, records, e, "MessageBounced", { recipients: b.recipients, reason: b.reason.slice(0, 1000) });
  }
  if (delivered.length) await record(ctx, records, e, "MessageDelivered", { recipients: delivered, via });
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
