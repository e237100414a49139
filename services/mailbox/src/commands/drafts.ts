import type { Kysely, Selectable } from "kysely";
import { AppError, notFound, parseOrThrow } from "@mam/contracts/errors.ts";
import { IdParam } from "@mam/contracts/identity-api.ts";
import { DraftInput, DraftRef, ListDraftsQuery } from "@mam/contracts/messages-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { z } from "zod";
import type { MailboxContext } from "../context.ts";
import type { DraftsTable, MailboxDb } from "../db/schema.ts";
import { visibleInbox, type InboxRow } from "../read/inboxes.ts";
import { messageOfInbox } from "../read/messages.ts";
import { execute, type CommandMeta } from "./execute.ts";
import { sendFromInbox } from "./send-core.ts";

type DraftRow = Selectable<DraftsTable>;
const iso = (d: Date | string) => new Date(d).toISOString();

const view = (r: DraftRow) => ({
  id: r.draft_id,
  inboxId: r.inbox_id,
  to: r.fields.to,
  cc: r.fields.cc,
  bcc: r.fields.bcc,
  subject: r.fields.subject,
  plainBody: r.fields.plainBody,
  htmlBody: r.fields.htmlBody,
  replyToMessageId: r.fields.replyToMessageId,
  verified: r.fields.verified,
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at),
});

async function draftOf(db: Kysely<MailboxDb>, inbox: InboxRow, rawId: unknown): Promise<DraftRow> {
  const id = parseOrThrow(IdParam, rawId, "draft id");
  const r = await db
    .selectFrom("drafts")
    .selectAll()
    .where("workspace_id", "=", inbox.workspace_id)
    .where("draft_id", "=", id)
    .where("inbox_id", "=", inbox.inbox_id)
    .where("deleted_at", "is", null)
    .executeTakeFirst();
  if (!r) throw notFound("Draft");
  return r;
}

const EMPTY = { to: [], cc: [], bcc: [], subject: "", plainBody: null, htmlBody: null, replyToMessageId: null, verified: false };

/** Creates (no draftId) or merge-patches a draft: omitted fields stay as they were. */
async function save(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta, create: boolean) {
  const ref = parseOrThrow(DraftRef, raw);
  const input = parseOrThrow(DraftInput, ref.body ?? {});
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  if (input.replyToMessageId) await messageOfInbox(ctx.db, inbox, input.replyToMessageId);
  const draftId = create ? ctx.newId() : parseOrThrow(IdParam, ref.draftId, "draft id");
  return execute(
    ctx,
    inbox.tenant_id,
    meta,
    async (tx) => {
      const current = create ? undefined : await draftOf(tx, inbox, draftId);
      const patch = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
      const fields = { ...EMPTY, ...current?.fields, ...patch };
      return [
        {
          event: { type: "DraftSaved", schemaVersion: 1, data: { draftId, inboxId: inbox.inbox_id, created: create, fields } },
          tenantId: inbox.tenant_id,
          workspaceId: inbox.workspace_id,
          aggregateId: draftId,
          aggregateVersion: (current?.version ?? 0) + 1,
        },
      ];
    },
    async (tx) => ({ status: create ? 201 : 200, body: view(await draftOf(tx, inbox, draftId)) }),
  );
}

export const createDraft = (ctx: MailboxContext, c: ScopeClaims, raw: unknown, meta: CommandMeta) => save(ctx, c, raw, meta, true);
export const updateDraft = (ctx: MailboxContext, c: ScopeClaims, raw: unknown, meta: CommandMeta) => save(ctx, c, raw, meta, false);

export async function listDrafts(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const { inboxId, ...query } = parseOrThrow(z.object({ inboxId: z.string() }).loose(), raw);
  const q = parseOrThrow(ListDraftsQuery, query, "query");
  const inbox = await visibleInbox(ctx.db, claims, inboxId);
  const base = ctx.db.selectFrom("drafts").where("workspace_id", "=", inbox.workspace_id).where("inbox_id", "=", inbox.inbox_id).where("deleted_at", "is", null);
  const [rows, total] = await Promise.all([
    base.selectAll().orderBy("created_at", "desc").orderBy("draft_id", "desc").limit(q.limit).offset(q.offset).execute(),
    base.select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow(),
  ]);
  return { drafts: rows.map(view), pagination: { total: Number(total.n), limit: q.limit, offset: q.offset } };
}

export async function getDraft(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const ref = parseOrThrow(DraftRef, raw);
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  return view(await draftOf(ctx.db, inbox, ref.draftId));
}

export async function deleteDraft(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(DraftRef, raw);
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  const d = await draftOf(ctx.db, inbox, ref.draftId);
  return execute(
    ctx,
    inbox.tenant_id,
    meta,
    async (tx) => {
      const live = await draftOf(tx, inbox, d.draft_id);
      return [
        {
          event: { type: "DraftDeleted", schemaVersion: 1, data: { draftId: live.draft_id, sentMessageId: null } },
          tenantId: inbox.tenant_id,
          workspaceId: inbox.workspace_id,
          aggregateId: live.draft_id,
          aggregateVersion: live.version + 1,
        },
      ];
    },
    async () => ({ deleted: true, id: d.draft_id }),
  );
}

/** Sends the draft and deletes it in one step; a reply draft continues its thread. */
export async function sendDraft(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(DraftRef, raw);
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  const d = await draftOf(ctx.db, inbox, ref.draftId);
  const f = d.fields;
  if (!f.to.length) throw new AppError("VALIDATION_ERROR", "The draft has no recipient", [{ path: "to", message: "required to send" }]);
  if (!f.subject && !f.replyToMessageId) throw new AppError("VALIDATION_ERROR", "The draft has no subject", [{ path: "subject", message: "required to send" }]);
  if (f.plainBody === null && f.htmlBody === null) throw new AppError("VALIDATION_ERROR", "The draft has no body", [{ path: "plainBody", message: "required to send" }]);
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
      text: f.plainBody ?? undefined,
      html: f.htmlBody ?? undefined,
      attachments: [],
      firstContactCheck: !original && !f.verified,
      inReplyTo: original?.message_id_header ?? null,
      references: original ? [...original.references, original.message_id_header].slice(-50) : [],
      threadId: original?.thread_id ?? null,
    },
    meta,
    undefined,
    // Re-read under the lock: a draft sent (or changed) meanwhile is not sent twice, nor stale.
    async (tx, messageId) => {
      const live = await draftOf(tx, inbox, d.draft_id);
      if (live.version !== d.version) throw new AppError("CONFLICT", "The draft changed while being sent; send it again");
      return [
        {
          event: { type: "DraftDeleted", schemaVersion: 1, data: { draftId: d.draft_id, sentMessageId: messageId } },
          tenantId: inbox.tenant_id,
          workspaceId: inbox.workspace_id,
          aggregateId: d.draft_id,
          aggregateVersion: d.version + 1,
        },
      ];
    },
  );
  return { ...result, draftId: d.draft_id };
}
