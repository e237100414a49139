import { sql, type Kysely } from "kysely";
import type { MailboxEnvelope } from "@mam/contracts/mailbox-events.ts";
import type { Authentication, MessageFacts } from "@mam/contracts/message-events.ts";
import type { MailboxDb } from "../db/schema.ts";
import { addNewMessages, refreshThreads } from "./thread-folders.ts";

/** What a changed message gives its thread's rows to refresh (see thread-folders.ts). */
const THREAD_KEY = ["workspace_id", "inbox_id", "thread_id"] as const;

type MessageEvent = Extract<MailboxEnvelope, { type: `Message${string}` }>;

export type NewMessageEvent = Extract<MessageEvent, { type: "MessageSent" | "MessageReceived" }>;

export const isNewMessage = (e: { type: string }): e is NewMessageEvent => e.type === "MessageSent" || e.type === "MessageReceived";

/** Inserts messages (and creates or touches their threads), one statement per table for the lot. */
export async function insertMessages(tx: Kysely<MailboxDb>, events: NewMessageEvent[]): Promise<void> {
  if (!events.length) return;
  // One row per thread: an upsert may not touch the same row twice in one statement.
  const threads = new Map<
    string,
    { workspace_id: string; thread_id: string; inbox_id: string; subject: string; created_at: string; last_message_at: string }
  >();
  for (const e of events) {
    const key = `${e.workspaceId}/${e.data.threadId}`;
    const t = threads.get(key);
    if (!t) {
      threads.set(key, {
        workspace_id: e.workspaceId!,
        thread_id: e.data.threadId,
        inbox_id: e.data.inboxId,
        subject: e.data.subject,
        created_at: e.occurredAt,
        last_message_at: e.occurredAt,
      });
    } else if (e.occurredAt > t.last_message_at) {
      t.last_message_at = e.occurredAt;
    }
  }
  await tx
    .insertInto("threads")
    .values([...threads.values()])
    .onConflict((oc) =>
      oc.columns(["workspace_id", "thread_id"]).doUpdateSet({ last_message_at: sql`greatest(threads.last_message_at, excluded.last_message_at)` }),
    )
    .execute();
  const inserted = await tx
    .insertInto("messages")
    .values(
      events.map((e) => {
        const f: MessageFacts = e.data;
        const inbound = e.type === "MessageReceived";
        const authentication: Authentication | null = e.type === "MessageReceived" ? (e.data.authentication ?? null) : null;
        return {
          workspace_id: e.workspaceId!,
          message_id: f.messageId,
          inbox_id: f.inboxId,
          tenant_id: e.tenantId!,
          thread_id: f.threadId,
          direction: inbound ? ("inbound" as const) : ("outbound" as const),
          status: inbound ? "received" : "sent",
          from_address: f.from.address,
          from_name: f.from.name,
          to_addresses: JSON.stringify(f.to),
          cc_addresses: JSON.stringify(f.cc),
          bcc_addresses: JSON.stringify(f.bcc),
          reply_to: f.replyTo,
          subject: f.subject,
          preview: f.preview,
          plain_hash: f.plainHash,
          html_hash: f.htmlHash,
          raw_hash: f.rawHash,
          raw_size: f.rawSize,
          message_id_header: f.messageIdHeader,
          in_reply_to: f.inReplyTo,
          references: JSON.stringify(f.references),
          attachments: JSON.stringify(f.attachments),
          labels: JSON.stringify(inbound ? ["received", "unread"] : ["sent"]),
          is_read: !inbound,
          is_starred: false,
          is_archived: false,
          source_message_id: e.type === "MessageReceived" ? e.data.sourceMessageId : null,
          authentication: authentication ? JSON.stringify(authentication) : null,
          version: e.aggregateVersion,
          created_at: e.occurredAt,
          updated_at: e.occurredAt,
          deleted_at: null,
        };
      }),
    )
    .onConflict((oc) => oc.columns(["workspace_id", "message_id"]).doNothing())
    .returning([...THREAD_KEY, "tenant_id", "message_id", "direction", "created_at", "from_address", "to_addresses", "cc_addresses", "labels"])
    .execute();
  await addNewMessages(tx, inserted);
}

/**
 * Each bounced recipient's outcome: a bounce recorded over nothing, or over "delivered" (a
 * bounce report that comes back after a server accepted the message: a relay takes it, the
 * final MX refuses it); a bounce already there stands. Deliveries: recordDeliveries.
 */
async function bounces(tx: Kysely<MailboxDb>, e: Extract<MessageEvent, { type: "MessageBounced" }>) {
  const recipients = [...new Set(e.data.recipients.map((r) => r.toLowerCase()))];
  if (!recipients.length) return;
  await tx
    .insertInto("delivery_outcomes")
    .values(
      recipients.map((recipient) => ({
        workspace_id: e.workspaceId!,
        message_id: e.data.messageId,
        recipient,
        outcome: "bounced" as const,
        at: e.occurredAt,
        reason: e.data.reason,
      })),
    )
    .onConflict((oc) =>
      oc
        .columns(["workspace_id", "message_id", "recipient"])
        .doUpdateSet({ outcome: "bounced", reason: sql<string>`excluded.reason`, at: sql<string>`excluded.at` })
        .where("delivery_outcomes.outcome", "=", "delivered"),
    )
    .execute();
}

export type DeliveredEvent = Extract<MessageEvent, { type: "MessageDelivered" }>;

/**
 * Deliveries, in stream order: each recipient's outcome, and the message's status. Two
 * statements for the lot however many messages (a group-committed batch of local copies
 * records as many deliveries). A delivery adds outcomes that are not there yet and never
 * turns a bounce back, so the only order that counts is each message's own: its last event
 * gives its version.
 */
export async function recordDeliveries(tx: Kysely<MailboxDb>, events: DeliveredEvent[]): Promise<void> {
  if (!events.length) return;
  const outcomeRows = new Map<string, { workspace_id: string; message_id: string; recipient: string; outcome: "delivered"; at: string; reason: null }>();
  const last = new Map<string, DeliveredEvent>();
  for (const e of events) {
    for (const recipient of e.data.recipients.map((r) => r.toLowerCase())) {
      const key = `${e.workspaceId} ${e.data.messageId} ${recipient}`;
      if (!outcomeRows.has(key))
        outcomeRows.set(key, { workspace_id: e.workspaceId!, message_id: e.data.messageId, recipient, outcome: "delivered", at: e.occurredAt, reason: null });
    }
    last.set(`${e.workspaceId} ${e.data.messageId}`, e);
  }
  if (outcomeRows.size) {
    await tx
      .insertInto("delivery_outcomes")
      .values([...outcomeRows.values()])
      .onConflict((oc) => oc.columns(["workspace_id", "message_id", "recipient"]).doNothing())
      .execute();
  }
  const latest = [...last.values()];
  // Delivered never overrides a bounce of some of the recipients; the version moves on regardless.
  await sql`
    update messages m
    set status = case when m.status = 'sent' then 'delivered' else m.status end, updated_at = v.at, version = v.version
    from unnest(
      ${latest.map((e) => e.workspaceId!)}::uuid[], ${latest.map((e) => e.data.messageId)}::uuid[],
      ${latest.map((e) => e.occurredAt)}::timestamptz[], ${latest.map((e) => e.aggregateVersion)}::int[]
    ) as v(workspace_id, message_id, at, version)
    where m.workspace_id = v.workspace_id and m.message_id = v.message_id`.execute(tx);
}

/** Messages and threads of an inbox, both directions. */
export async function evolveMessages(tx: Kysely<MailboxDb>, e: MessageEvent): Promise<void> {
  const ws = e.workspaceId!;
  const row = (id: string) => tx.updateTable("messages").where("workspace_id", "=", ws).where("message_id", "=", id);
  switch (e.type) {
    case "MessageSent":
    case "MessageReceived":
      return insertMessages(tx, [e]);
    case "MessageFlagged": {
      const { messageId, ...flags } = e.data;
      const set: Record<string, unknown> = { version: e.aggregateVersion, updated_at: e.occurredAt };
      if (flags.isRead !== undefined) {
        set.is_read = flags.isRead;
        // Received mail carries the label "unread" while it is unread (AgentMail's label for
        // /v1's flag), so a message never says both isRead and "unread".
        set.labels = flags.isRead
          ? sql`labels - 'unread'`
          : sql`case when direction = 'inbound' and not labels ? 'unread' then labels || '["unread"]'::jsonb else labels end`;
      }
      if (flags.isStarred !== undefined) set.is_starred = flags.isStarred;
      if (flags.isArchived !== undefined) set.is_archived = flags.isArchived;
      await refreshThreads(tx, await row(messageId).set(set).returning(THREAD_KEY).execute());
      return;
    }
    case "MessageDeleted":
      await refreshThreads(
        tx,
        await row(e.data.messageId).set({ deleted_at: e.occurredAt, updated_at: e.occurredAt, version: e.aggregateVersion }).returning(THREAD_KEY).execute(),
      );
      return;
    case "MessageDelivered":
      return recordDeliveries(tx, [e]);
    case "MessageBounced":
      await bounces(tx, e);
      await row(e.data.messageId).set({ status: "bounced", updated_at: e.occurredAt, version: e.aggregateVersion }).execute();
      return;
    default: {
      const unreachable: never = e;
      throw new Error(`unhandled message event ${(unreachable as MessageEvent).type}`);
    }
  }
}
