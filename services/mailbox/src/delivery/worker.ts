import type { Kysely } from "kysely";
import { ZodError } from "zod";
import { DurableConsumer } from "@mam/bus/consumer.ts";
import { contextEventsFilter } from "@mam/contracts/envelope.ts";
import { MAILBOX_CONTEXT, parseMailboxEvent, type MailboxEnvelope } from "@mam/contracts/mailbox-events.ts";
import type { MessageFacts } from "@mam/contracts/message-events.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import { execute, type CommandMeta } from "../commands/execute.ts";
import { getBlobs, putBlob } from "../store/blobs.ts";
import { derivedId } from "./ids.ts";
import { TransientDeliveryError, type Outbound } from "./outbound.ts";

export const DELIVERY_DURABLE = "mailbox-delivery";
const SYSTEM: CommandMeta = { actor: { type: "system", id: "delivery" }, requestId: "delivery" };

type Sent = Extract<MailboxEnvelope, { type: "MessageSent" }>;

/** The thread a message joins in an inbox: In-Reply-To first, then References, else a new one. */
async function threadFor(tx: Kysely<MailboxDb>, ws: string, inboxId: string, f: MessageFacts, fallback: string): Promise<string> {
  for (const header of [f.inReplyTo, ...[...f.references].reverse()].filter((h): h is string => !!h)) {
    const hit = await tx
      .selectFrom("messages")
      .select("thread_id")
      .where("workspace_id", "=", ws)
      .where("inbox_id", "=", inboxId)
      .where("message_id_header", "=", header)
      .executeTakeFirst();
    if (hit) return hit.thread_id;
  }
  return fallback;
}

/** A copy for an inbox of this platform, with no SMTP round trip; the same delivery twice makes one copy. */
async function deliverLocally(ctx: MailboxContext, e: Sent, target: { tenant_id: string; workspace_id: string; inbox_id: string }) {
  const f = e.data;
  const messageId = derivedId("local", f.messageId, target.inbox_id);
  await execute(
    ctx,
    target.tenant_id,
    SYSTEM,
    async (tx) => {
      const exists = await tx.selectFrom("messages").select("message_id").where("workspace_id", "=", target.workspace_id).where("message_id", "=", messageId).executeTakeFirst();
      if (exists) return [];
      const hashes = [f.rawHash, f.plainHash, f.htmlHash, ...f.attachments.map((a) => a.hash)].filter((h): h is string => !!h);
      const blobs = await getBlobs(tx, e.workspaceId!, hashes);
      for (const data of blobs.values()) await putBlob(tx, target.workspace_id, data, ctx.clock());
      const threadId = await threadFor(tx, target.workspace_id, target.inbox_id, f, derivedId("thread", messageId));
      return [
        {
          event: {
            type: "MessageReceived",
            schemaVersion: 1,
            data: { ...f, messageId, inboxId: target.inbox_id, threadId, bcc: [], sourceMessageId: f.messageId },
          },
          tenantId: target.tenant_id,
          workspaceId: target.workspace_id,
          aggregateId: messageId,
          aggregateVersion: 1,
        },
      ];
    },
    async () => undefined,
  );
}

async function record(ctx: MailboxContext, e: Sent, type: "MessageDelivered" | "MessageBounced", data: object) {
  await execute(
    ctx,
    e.tenantId,
    SYSTEM,
    async () => [
      {
        event: { type, schemaVersion: 1, data: { messageId: e.data.messageId, ...data } } as never,
        tenantId: e.tenantId,
        workspaceId: e.workspaceId,
        aggregateId: e.data.messageId,
        aggregateVersion: 2,
      },
    ],
    async () => undefined,
  );
}

/** Delivers each sent message: locally where the address is ours, through Outbound elsewhere. */
async function deliver(ctx: MailboxContext, outbound: Outbound, e: Sent, attempt: number): Promise<void> {
  const f = e.data;
  const mine = await ctx.db.selectFrom("messages").select(["status"]).where("workspace_id", "=", e.workspaceId!).where("message_id", "=", f.messageId).executeTakeFirst();
  // Not committed yet by the command that sent it: throwing makes the consumer try again shortly.
  if (!mine) throw new Error(`message ${f.messageId} not visible yet`);
  if (mine.status !== "sent") return;

  const recipients = [...new Set([...f.to, ...f.cc, ...f.bcc])];
  const claims = await ctx.db.selectFrom("address_claims").selectAll().where("address", "in", recipients).execute();
  const local = new Map(claims.map((c) => [c.inbox_id, c]));
  for (const target of local.values()) await deliverLocally(ctx, e, target);

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
    for (const b of r.rejected) await record(ctx, e, "MessageBounced", { recipients: b.recipients, reason: b.reason.slice(0, 1000) });
  }
  if (delivered.length) await record(ctx, e, "MessageDelivered", { recipients: delivered, via });
}

export function deliveryWorker(ctx: MailboxContext, backbone: Backbone<any>, outbound: Outbound): DurableConsumer {
  return new DurableConsumer({
    bus: backbone.bus,
    stream: backbone.stream,
    durable: DELIVERY_DURABLE,
    filterSubject: contextEventsFilter(ctx.bus.prefix, MAILBOX_CONTEXT),
    logger: ctx.logger,
    isPoison: (err) => err instanceof ZodError,
    handle: async (msg) => {
      if (!msg.subject.endsWith(".MessageSent")) return;
      const e = parseMailboxEvent(msg.json());
      if (e.type === "MessageSent") await deliver(ctx, outbound, e, msg.info.deliveryCount);
    },
  });
}
