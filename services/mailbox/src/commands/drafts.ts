import { AppError, parseOrThrow } from "@mam/contracts/errors.ts";
import { IdParam } from "@mam/contracts/identity-api.ts";
import { DraftInput, DraftRef } from "@mam/contracts/messages-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { Kysely } from "kysely";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import { draftOf, draftView, loadDraft } from "../read/drafts.ts";
import { sendingInbox, visibleInbox, type InboxRow } from "../read/inboxes.ts";
import { messageOfInbox } from "../read/messages.ts";
import { decide, type DraftCommand } from "./draft-decision.ts";
import { execute, type CommandMeta } from "./execute.ts";
import { bodiesOf, sendFromInbox } from "./send-core.ts";
import { conversationOf, referencesOf } from "./replies.ts";

const ownerOf = (inbox: InboxRow) => ({ tenantId: inbox.tenant_id, workspaceId: inbox.workspace_id });

function run<T>(ctx: MailboxContext, inbox: InboxRow, meta: CommandMeta, c: DraftCommand, answer: (tx: Kysely<MailboxDb>) => Promise<T>) {
  return execute(ctx, inbox.tenant_id, meta, {
    load: (tx) => loadDraft(tx, inbox.workspace_id, c.draftId),
    decide: (state) => decide(c, state),
    answer: (tx) => answer(tx),
  });
}

/** Creates (no draftId) or merge-patches a draft: omitted fields stay as they were. */
async function save(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta, create: boolean) {
  const ref = parseOrThrow(DraftRef, raw);
  const patch = parseOrThrow(DraftInput, ref.body ?? {});
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  if (patch.replyToMessageId) await messageOfInbox(ctx.db, inbox, patch.replyToMessageId);
  const draftId = create ? ctx.newId() : parseOrThrow(IdParam, ref.draftId, "draft id");
  const c: DraftCommand = { kind: "save", owner: ownerOf(inbox), inboxId: inbox.inbox_id, draftId, create, patch };
  return run(ctx, inbox, meta, c, async (tx) => ({ status: create ? 201 : 200, body: draftView(await draftOf(tx, inbox, draftId)) }));
}

export const createDraft = (ctx: MailboxContext, c: ScopeClaims, raw: unknown, meta: CommandMeta) => save(ctx, c, raw, meta, true);
export const updateDraft = (ctx: MailboxContext, c: ScopeClaims, raw: unknown, meta: CommandMeta) => save(ctx, c, raw, meta, false);

export async function deleteDraft(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(DraftRef, raw);
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  const d = await draftOf(ctx.db, inbox, ref.draftId);
  const c: DraftCommand = { kind: "delete", owner: ownerOf(inbox), inboxId: inbox.inbox_id, draftId: d.draft_id };
  return run(ctx, inbox, meta, c, async () => ({ deleted: true, id: d.draft_id }));
}

/** Sends the draft and deletes it in one step; a reply draft continues its thread. */
export async function sendDraft(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(DraftRef, raw);
  const inbox = await sendingInbox(ctx.db, claims, ref.inboxId);
  const d = await draftOf(ctx.db, inbox, ref.draftId);
  const f = d.fields;
  if (!f.to.length) throw new AppError("VALIDATION_ERROR", "The draft has no recipient", [{ path: "to", message: "required to send" }]);
  if (!f.subject && !f.replyToMessageId) throw new AppError("VALIDATION_ERROR", "The draft has no subject", [{ path: "subject", message: "required to send" }]);
  const original = f.replyToMessageId ? await messageOfInbox(ctx.db, inbox, f.replyToMessageId) : undefined;
  const subject = f.subject || (original ? (original.subject.toLowerCase().startsWith("re:") ? original.subject : `Re: ${original.subject}`) : "");
  const result = await sendFromInbox(
    ctx,
    inbox,
    {
      to: f.to,
      cc: f.cc,
      bcc: f.bcc,
      subject,
      ...bodiesOf(f.plainBody, f.htmlBody),
      attachments: [],
      firstContactCheck: !f.verified,
      inConversation: original ? conversationOf(original) : undefined,
      inReplyTo: original?.message_id_header ?? null,
      references: original ? referencesOf(original) : [],
      threadId: original?.thread_id ?? null,
    },
    meta,
    // Decided against the draft as read now: one sent or changed meanwhile is not sent (again, or stale).
    { draft: { draftId: d.draft_id, version: d.version } },
  );
  return { ...result, draftId: d.draft_id };
}
