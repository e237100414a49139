import type { Kysely, Selectable } from "kysely";
import { notFound, parseOrThrow } from "@mam/contracts/errors.ts";
import { IdParam } from "@mam/contracts/identity-api.ts";
import { ListRef, type AddressList, type ListEntry } from "@mam/contracts/lists-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
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

export async function listsOfInbox(db: Kysely<MailboxDb>, inbox: InboxRow): Promise<AddressList[]> {
  const rows = await db
    .selectFrom("lists")
    .selectAll()
    .where("workspace_id", "=", inbox.workspace_id)
    .where("inbox_id", "=", inbox.inbox_id)
    .where("deleted_at", "is", null)
    .orderBy("created_at")
    .orderBy("list_id")
    .execute();
  const entries = await entriesOf(
    db,
    inbox.workspace_id,
    rows.map((r) => r.list_id),
  );
  return rows.map((r) =>
    toList(
      r,
      entries.filter((e) => e.list_id === r.list_id),
    ),
  );
}

export async function getLists(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const ref = parseOrThrow(ListRef, raw);
  return { lists: await listsOfInbox(ctx.db, await visibleInbox(ctx.db, claims, ref.inboxId)) };
}

export async function getList(ctx: MailboxContext, claims: ScopeClaims, raw: unknown) {
  const ref = parseOrThrow(ListRef, raw);
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  return listView(ctx.db, await listOfInbox(ctx.db, inbox, ref.listId));
}
