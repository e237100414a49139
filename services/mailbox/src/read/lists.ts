import { sql, type Kysely, type Selectable } from "kysely";
import type { z } from "zod";
import { notFound, parseOrThrow } from "@mam/contracts/errors.ts";
import { IdParam } from "@mam/contracts/identity-api.ts";
import { ListRef, type AddressList, type EntryPage, type ListEntry, type ListsOfInbox } from "@mam/contracts/lists-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { cursorKeys, keyInstant, pageOf, paginationOf, pastKeys, type PageRequest } from "@mam/service-kit/keyset.ts";
import type { MailboxContext } from "../context.ts";
import type { ListEntriesTable, ListsTable, MailboxDb } from "../db/schema.ts";
import { visibleInbox, type InboxRow } from "./inboxes.ts";

export type ListRow = Selectable<ListsTable>;
type EntryRow = Selectable<ListEntriesTable>;

const iso = (d: Date | string) => new Date(d).toISOString();

export const toEntry = (r: EntryRow): ListEntry => ({
  id: r.entry_id,
  email: r.email,
  displayName: r.display_name,
  metadata: r.metadata,
  createdAt: iso(r.created_at),
});

function toList(r: ListRow, entries: EntryRow[]): AddressList {
  return {
    id: r.list_id,
    inboxId: r.inbox_id,
    name: r.name,
    description: r.description,
    entryCount: entries.length,
    entries: entries.map(toEntry),
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

/** A live list of this inbox; a list of another inbox is as missing as one that never was. */
export async function listOfInbox(db: Kysely<MailboxDb>, inbox: InboxRow, rawId: unknown): Promise<ListRow> {
  const id = parseOrThrow(IdParam, rawId, "list id");
  const r = await db
    .selectFrom("lists")
    .selectAll()
    .where("workspace_id", "=", inbox.workspace_id)
    .where("list_id", "=", id)
    .where("inbox_id", "=", inbox.inbox_id)
    .where("deleted_at", "is", null)
    .executeTakeFirst();
  if (!r) throw notFound("List");
  return r;
}

export function entriesOf(db: Kysely<MailboxDb>, workspaceId: string, listIds: string[]): Promise<EntryRow[]> {
  if (!listIds.length) return Promise.resolve([]);
  return db
    .selectFrom("list_entries")
    .selectAll()
    .where("workspace_id", "=", workspaceId)
    .where("list_id", "in", listIds)
    .orderBy("created_at")
    .orderBy("entry_id")
    .execute();
}

export async function listView(db: Kysely<MailboxDb>, r: ListRow): Promise<AddressList> {
  return toList(r, await entriesOf(db, r.workspace_id, [r.list_id]));
}

const liveListsOf = (db: Kysely<MailboxDb>, inbox: InboxRow) =>
  db.selectFrom("lists").where("workspace_id", "=", inbox.workspace_id).where("inbox_id", "=", inbox.inbox_id).where("deleted_at", "is", null);

/** One page (and one row more) of an inbox's lists in `(created_at, list_id)` order, served by `lists_live_by_inbox`. */
export function listPageQuery(db: Kysely<MailboxDb>, inbox: InboxRow, req: PageRequest) {
  const after = cursorKeys(`lists:${inbox.inbox_id}`, req);
  let q = liveListsOf(db, inbox).selectAll().select(keyInstant("created_at").as("key_at"));
  q = after ? q.where(pastKeys("created_at", "list_id", after)) : q.offset(req.offset);
  return q
    .orderBy("created_at")
    .orderBy("list_id")
    .limit(req.limit + 1);
}

/** An inbox's lists, each with its entries (as before pages: a list's own entries page through `listEntries`). */
export async function getLists(ctx: MailboxContext, claims: ScopeClaims, req: { inboxId: string; query: PageRequest }): Promise<z.input<typeof ListsOfInbox>> {
  const inbox = await visibleInbox(ctx.db, claims, req.inboxId);
  const [rows, total] = await Promise.all([
    listPageQuery(ctx.db, inbox, req.query).execute(),
    liveListsOf(ctx.db, inbox).select(sql<string>`count(*)`.as("n")).executeTakeFirstOrThrow(),
  ]);
  const page = pageOf(`lists:${inbox.inbox_id}`, rows, req.query.limit, (r) => r.list_id);
  const entries = await entriesOf(
    ctx.db,
    inbox.workspace_id,
    page.rows.map((r) => r.list_id),
  );
  return {
    lists: page.rows.map((r) =>
      toList(
        r,
        entries.filter((e) => e.list_id === r.list_id),
      ),
    ),
    pagination: paginationOf(req.query, Number(total.n), page.nextCursor),
  };
}

const entriesOfList = (db: Kysely<MailboxDb>, list: ListRow) =>
  db.selectFrom("list_entries").where("workspace_id", "=", list.workspace_id).where("list_id", "=", list.list_id);

/** One page (and one row more) of a list's entries in `(created_at, entry_id)` order, served by `list_entries_by_list`. */
export function entryPageQuery(db: Kysely<MailboxDb>, list: ListRow, req: PageRequest) {
  const after = cursorKeys(`entries:${list.list_id}`, req);
  let q = entriesOfList(db, list).selectAll().select(keyInstant("created_at").as("key_at"));
  q = after ? q.where(pastKeys("created_at", "entry_id", after)) : q.offset(req.offset);
  return q
    .orderBy("created_at")
    .orderBy("entry_id")
    .limit(req.limit + 1);
}

export async function listEntries(
  ctx: MailboxContext,
  claims: ScopeClaims,
  req: { inboxId: string; listId: string; query: PageRequest },
): Promise<z.input<typeof EntryPage>> {
  const list = await listOfInbox(ctx.db, await visibleInbox(ctx.db, claims, req.inboxId), req.listId);
  const [rows, total] = await Promise.all([
    entryPageQuery(ctx.db, list, req.query).execute(),
    entriesOfList(ctx.db, list).select(sql<string>`count(*)`.as("n")).executeTakeFirstOrThrow(),
  ]);
  const page = pageOf(`entries:${list.list_id}`, rows, req.query.limit, (r) => r.entry_id);
  return { entries: page.rows.map(toEntry), pagination: paginationOf(req.query, Number(total.n), page.nextCursor) };
}

export async function getList(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const ref = parseOrThrow(ListRef, raw);
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  return listView(ctx.db, await listOfInbox(ctx.db, inbox, ref.listId));
}
