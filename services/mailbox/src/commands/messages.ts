import { parseOrThrow } from "@mam/contracts/errors.ts";
import { FlagsBody, MessageRef } from "@mam/contracts/messages-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { z } from "zod";
import type { Kysely } from "kysely";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import { visibleInbox, type InboxRow } from "../read/inboxes.ts";
import { loadMessages, messageOfInbox, viewsOf, type MessageRow } from "../read/messages.ts";
import { execute, type CommandMeta } from "./execute.ts";
import { decide, type Flags, type MessageCommand } from "./message-decision.ts";

function run<T>(ctx: MailboxContext, inbox: InboxRow, meta: CommandMeta, c: MessageCommand, answer: (tx: Kysely<MailboxDb>) => Promise<T>) {
  return execute(ctx, inbox.tenant_id, meta, {
    load: (tx) => loadMessages(tx, inbox.workspace_id, [c.messageId]),
    decide: (state) => decide(c, state),
    answer: (tx) => answer(tx),
  });
}

function setFlags(ctx: MailboxContext, inbox: InboxRow, m: MessageRow, flags: Flags, meta: CommandMeta) {
  const owner = { tenantId: inbox.tenant_id, workspaceId: inbox.workspace_id };
  return run(ctx, inbox, meta, { kind: "flag", owner, inboxId: inbox.inbox_id, messageId: m.message_id, flags }, async (tx) => {
    return (await viewsOf(tx, inbox.workspace_id, [await messageOfInbox(tx, inbox, m.message_id)]))[0]!;
  });
}

/** Reading a message marks it read, as the reference says: a read, and a command when it was unread. */
export async function getMessage(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(MessageRef, raw);
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  const m = await messageOfInbox(ctx.db, inbox, ref.messageId);
  if (!m.is_read) return setFlags(ctx, inbox, m, { isRead: true }, meta);
  return (await viewsOf(ctx.db, inbox.workspace_id, [m]))[0]!;
}

export async function patchMessage(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(MessageRef.extend({ body: z.unknown() }), raw);
  const flags = parseOrThrow(FlagsBody, ref.body ?? {});
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  return setFlags(ctx, inbox, await messageOfInbox(ctx.db, inbox, ref.messageId), flags, meta);
}

/** Soft delete: gone from listings, kept in its thread's history and in the stream. */
export async function deleteMessage(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(MessageRef, raw);
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  const m = await messageOfInbox(ctx.db, inbox, ref.messageId);
  const owner = { tenantId: inbox.tenant_id, workspaceId: inbox.workspace_id };
  return run(ctx, inbox, meta, { kind: "delete", owner, inboxId: inbox.inbox_id, messageId: m.message_id }, async () => ({ deleted: true, id: m.message_id }));
}
