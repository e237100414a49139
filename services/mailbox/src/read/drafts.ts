import type { Kysely, Selectable } from "kysely";
import { notFound, parseOrThrow } from "@mam/contracts/errors.ts";
import { IdParam } from "@mam/contracts/identity-api.ts";
import { DraftRef, ListDraftsQuery } from "@mam/contracts/messages-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { cursorKeys, keyInstant, pageOf, paginationOf, pastKeys } from "@mam/service-kit/keyset.ts";
import { z } from "zod";
import type { DraftsState } from "../commands/draft-decision.ts";
import type { MailboxContext } from "../context.ts";
import type { DraftsTable, MailboxDb } from "../db/schema.ts";
import { visibleInbox, type InboxRow } from "./inboxes.ts";
import type { PageAt } from "./mailbox-view.ts";

export type DraftRow = Selectable<DraftsTable>;
const iso = (d: Date | string) => new Date(d).toISOString();

export const draftView = (r: DraftRow) => ({
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

/** A live draft of this inbox. */
export async function draftOf(db: Kysely<MailboxDb>, inbox: InboxRow, rawId: unknown): Promise<DraftRow> {
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

/** A draft as its commands are decided against it (deleted or of another inbox included: the decision tells). */
export async function loadDraft(db: Kysely<MailboxDb>, workspaceId: string, draftId: string): Promise<DraftsState> {
  const r = await db
    .selectFrom("drafts")
    .select(["inbox_id", "fields", "version", "deleted_at"])
    .where("workspace_id", "=", workspaceId)
    .where("draft_id", "=", draftId)
    .executeTakeFirst();
  const drafts = new Map(r ? [[draftId, { inboxId: r.inbox_id, fields: r.fields, deleted: r.deleted_at !== null, version: r.version }]] : []);
  return { drafts };
}

/** A page of an inbox's live drafts, newest first. */
export function draftsQuery(db: Kysely<MailboxDb>, inbox: InboxRow, p: PageAt) {
  let q = db.selectFrom("drafts").where("workspace_id", "=", inbox.workspace_id).where("inbox_id", "=", inbox.inbox_id).where("deleted_at", "is", null);
  if (p.after) q = q.where(pastKeys("created_at", "draft_id", p.after, "desc"));
  return q
    .selectAll()
    .select(keyInstant("created_at").as("key_at"))
    .orderBy("created_at", "desc")
    .orderBy("draft_id", "desc")
    .limit(p.limit + 1)
    .offset(p.offset);
}

export async function listDrafts(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const { inboxId, ...query } = parseOrThrow(z.object({ inboxId: z.string() }).loose(), raw);
  const q = parseOrThrow(ListDraftsQuery, query, "query");
  const list = `drafts:${inboxId}`;
  const page = { limit: q.limit, offset: q.offset, after: cursorKeys(list, q) };
  const inbox = await visibleInbox(ctx.db, claims, inboxId);
  const [rows, total] = await Promise.all([
    draftsQuery(ctx.db, inbox, page).execute(),
    ctx.db
      .selectFrom("folder_counts")
      .where("workspace_id", "=", inbox.workspace_id)
      .where("inbox_id", "=", inbox.inbox_id)
      .where("folder", "=", "drafts")
      .select("total as n")
      .executeTakeFirst(),
  ]);
  const { rows: served, nextCursor } = pageOf(list, rows, q.limit, (r) => r.draft_id);
  return { drafts: served.map(draftView), pagination: paginationOf(q, Number(total?.n ?? 0), nextCursor) };
}

export async function getDraft(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const ref = parseOrThrow(DraftRef, raw);
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  return draftView(await draftOf(ctx.db, inbox, ref.draftId));
}
