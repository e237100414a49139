import type { Kysely } from "kysely";
import { AppError, notFound, parseOrThrow } from "@mam/contracts/errors.ts";
import { IdParam } from "@mam/contracts/identity-api.ts";
import {
  AddEntryBody,
  CreateListBody,
  ListRef,
  MAX_ENTRIES_PER_LIST,
  MAX_LISTS_PER_INBOX,
  UpdateEntryBody,
  UpdateListBody,
} from "@mam/contracts/lists-api.ts";
import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import { visibleInbox, type InboxRow } from "../read/inboxes.ts";
import { listOfInbox, listsOfInbox, listView, toEntry, type ListRow } from "../read/lists.ts";
import { execute, type CommandMeta, type EventDraft } from "./execute.ts";

const draft = (list: { list_id: string; version: number }, inbox: InboxRow, event: MailboxEvent): EventDraft => ({
  event,
  tenantId: inbox.tenant_id,
  workspaceId: inbox.workspace_id,
  aggregateId: list.list_id,
  aggregateVersion: list.version + 1,
});

/** Runs a list command inside the tenant's lock, with the inbox (and list) re-read there. */
async function onList<T>(
  ctx: MailboxContext,
  claims: ScopeClaims,
  ref: { inboxId: string; listId?: string },
  meta: CommandMeta,
  decide: (tx: Kysely<MailboxDb>, inbox: InboxRow, list: ListRow) => Promise<EventDraft[]>,
  read: (tx: Kysely<MailboxDb>, inbox: InboxRow, list: ListRow) => Promise<T>,
): Promise<T> {
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  let seen: { inbox: InboxRow; list: ListRow } | undefined;
  return execute(
    ctx,
    inbox.tenant_id,
    meta,
    async (tx) => {
      const live = await visibleInbox(tx, claims, ref.inboxId);
      seen = { inbox: live, list: await listOfInbox(tx, live, ref.listId) };
      return decide(tx, seen.inbox, seen.list);
    },
    (tx) => read(tx, seen!.inbox, seen!.list),
  );
}

export async function createList(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(ListRef, raw);
  const body = parseOrThrow(CreateListBody, ref.body ?? {});
  const inbox = await visibleInbox(ctx.db, claims, ref.inboxId);
  const listId = ctx.newId();
  return execute(
    ctx,
    inbox.tenant_id,
    meta,
    async (tx) => {
      const live = await visibleInbox(tx, claims, ref.inboxId);
      if ((await listsOfInbox(tx, live)).length >= MAX_LISTS_PER_INBOX) throw new AppError("CONFLICT", `An inbox holds at most ${MAX_LISTS_PER_INBOX} lists`);
      const event: MailboxEvent = { type: "ListCreated", schemaVersion: 1, data: { listId, inboxId: live.inbox_id, name: body.name, description: body.description ?? null } };
      return [draft({ list_id: listId, version: 0 }, live, event)];
    },
    async (tx) => {
      const row = await tx.selectFrom("lists").selectAll().where("workspace_id", "=", inbox.workspace_id).where("list_id", "=", listId).executeTakeFirstOrThrow();
      return { status: 201, body: await listView(tx, row) };
    },
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

export async function updateList(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(ListRef, raw);
  const body = parseOrThrow(UpdateListBody, ref.body ?? {});
  return onList(
    ctx,
    claims,
    ref,
    meta,
    async (_tx, inbox, list) => [draft(list, inbox, { type: "ListUpdated", schemaVersion: 1, data: { listId: list.list_id, ...body } })],
    async (tx, _inbox, list) => listView(tx, (await tx.selectFrom("lists").selectAll().where("workspace_id", "=", list.workspace_id).where("list_id", "=", list.list_id).executeTakeFirstOrThrow())),
  );
}

export async function deleteList(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(ListRef, raw);
  return onList(
    ctx,
    claims,
    ref,
    meta,
    async (_tx, inbox, list) => [draft(list, inbox, { type: "ListDeleted", schemaVersion: 1, data: { listId: list.list_id } })],
    async (_tx, _inbox, list) => ({ deleted: true, id: list.list_id }),
  );
}

export async function addEntry(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(ListRef, raw);
  const body = parseOrThrow(AddEntryBody, ref.body ?? {});
  const entryId = ctx.newId();
  return onList(
    ctx,
    claims,
    ref,
    meta,
    async (tx, inbox, list) => {
      const existing = await tx.selectFrom("list_entries").select(["email"]).where("workspace_id", "=", list.workspace_id).where("list_id", "=", list.list_id).execute();
      if (existing.some((e) => e.email === body.email)) throw new AppError("CONFLICT", `${body.email} is already in this list`);
      if (existing.length >= MAX_ENTRIES_PER_LIST) throw new AppError("CONFLICT", `A list holds at most ${MAX_ENTRIES_PER_LIST} entries`);
      const data = { listId: list.list_id, entryId, email: body.email, displayName: body.displayName ?? null, metadata: body.metadata ?? {} };
      return [draft(list, inbox, { type: "ListEntryAdded", schemaVersion: 1, data })];
    },
    async (tx, _inbox, list) => {
      const row = await tx.selectFrom("list_entries").selectAll().where("workspace_id", "=", list.workspace_id).where("list_id", "=", list.list_id).where("entry_id", "=", entryId).executeTakeFirstOrThrow();
      return { status: 201, body: toEntry(row) };
    },
  );
}

async function entryOf(tx: Kysely<MailboxDb>, list: ListRow, rawId: unknown) {
  const id = parseOrThrow(IdParam, rawId, "entry id");
  const row = await tx.selectFrom("list_entries").selectAll().where("workspace_id", "=", list.workspace_id).where("list_id", "=", list.list_id).where("entry_id", "=", id).executeTakeFirst();
  if (!row) throw notFound("Entry");
  return row;
}

export async function updateEntry(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(ListRef, raw);
  const body = parseOrThrow(UpdateEntryBody, ref.body ?? {});
  return onList(
    ctx,
    claims,
    ref,
    meta,
    async (tx, inbox, list) => {
      const entry = await entryOf(tx, list, ref.entryId);
      return [draft(list, inbox, { type: "ListEntryUpdated", schemaVersion: 1, data: { listId: list.list_id, entryId: entry.entry_id, ...body } })];
    },
    async (tx, _inbox, list) => toEntry(await entryOf(tx, list, ref.entryId)),
  );
}

export async function removeEntry(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(ListRef, raw);
  return onList(
    ctx,
    claims,
    ref,
    meta,
    async (tx, inbox, list) => {
      const entry = await entryOf(tx, list, ref.entryId);
      return [draft(list, inbox, { type: "ListEntryRemoved", schemaVersion: 1, data: { listId: list.list_id, entryId: entry.entry_id } })];
    },
    async () => ({ deleted: true, id: String(ref.entryId) }),
  );
}
