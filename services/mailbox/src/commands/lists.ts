import type { Kysely } from "kysely";
import { parseOrThrow } from "@mam/contracts/errors.ts";
import { IdParam } from "@mam/contracts/identity-api.ts";
import { AddEntryBody, CreateListBody, ListRef, UpdateEntryBody, UpdateListBody } from "@mam/contracts/lists-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import { listView, toEntry } from "../read/lists.ts";
import { execute, type CommandMeta } from "./execute.ts";
import { idParam } from "./ids.ts";
import { loadInbox, tenantOf } from "./inbox-load.ts";
import { decide, initial, type ListCommand, type ListsState } from "./list-decisions.ts";

/** Runs a list command under the tenant's lock; `answer` reads the reply in the inbox's workspace. */
function run<T>(ctx: MailboxContext, command: ListCommand, meta: CommandMeta, answer: (tx: Kysely<MailboxDb>, workspaceId: string) => Promise<T>) {
  return execute(ctx, tenantOf(command.caller), meta, {
    load: (tx) => loadLists(tx, command),
    decide: (state) => decide(command, state),
    answer: (tx, state) => answer(tx, state.inboxes[command.inboxId]!.workspaceId),
  });
}

export async function createList(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(ListRef, raw);
  const body = parseOrThrow(CreateListBody, ref.body ?? {});
  const inboxId = idParam(ref.inboxId, "inbox id");
  const command: ListCommand = { type: "CreateList", caller: claims, inboxId, listId: ctx.newId(), name: body.name, description: body.description ?? null };
  return run(ctx, command, meta, async (tx, ws) => ({ status: 201, body: await listView(tx, await listRow(tx, ws, command.listId)) }));
}

export async function updateList(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(ListRef, raw);
  const body = parseOrThrow(UpdateListBody, ref.body ?? {});
  const inboxId = idParam(ref.inboxId, "inbox id");
  const command: ListCommand = { type: "UpdateList", caller: claims, inboxId, listId: ref.listId, ...body };
  return run(ctx, command, meta, async (tx, ws) => listView(tx, await listRow(tx, ws, ref.listId!)));
}

export async function deleteList(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(ListRef, raw);
  const inboxId = idParam(ref.inboxId, "inbox id");
  return run(ctx, { type: "DeleteList", caller: claims, inboxId, listId: ref.listId }, meta, async () => ({ deleted: true, id: ref.listId!.toLowerCase() }));
}

export async function addEntry(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(ListRef, raw);
  const body = parseOrThrow(AddEntryBody, ref.body ?? {});
  const inboxId = idParam(ref.inboxId, "inbox id");
  const entryId = ctx.newId();
  const command: ListCommand = {
    type: "AddEntry",
    caller: claims,
    inboxId,
    listId: ref.listId,
    entryId,
    email: body.email,
    displayName: body.displayName ?? null,
    metadata: body.metadata ?? {},
  };
  return run(ctx, command, meta, async (tx, ws) => ({ status: 201, body: toEntry(await entryRow(tx, ws, ref.listId!, entryId)) }));
}

export async function updateEntry(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(ListRef, raw);
  const body = parseOrThrow(UpdateEntryBody, ref.body ?? {});
  const inboxId = idParam(ref.inboxId, "inbox id");
  const command: ListCommand = { type: "UpdateEntry", caller: claims, inboxId, listId: ref.listId, entryId: ref.entryId, ...body };
  return run(ctx, command, meta, async (tx, ws) => toEntry(await entryRow(tx, ws, ref.listId!, ref.entryId!)));
}

export async function removeEntry(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const ref = parseOrThrow(ListRef, raw);
  const inboxId = idParam(ref.inboxId, "inbox id");
  const command: ListCommand = { type: "RemoveEntry", caller: claims, inboxId, listId: ref.listId, entryId: ref.entryId };
  return run(ctx, command, meta, async () => ({ deleted: true, id: String(ref.entryId) }));
}

const isId = (raw: string | undefined): raw is string => IdParam.safeParse(raw).success;

/**
 * The inbox, then what the command names: for a new list the inbox's count of lists, for
 * the others the list with its count of entries and only the entries the command is about
 * (an address being added, an entry by id), never the whole list.
 */
async function loadLists(tx: Kysely<MailboxDb>, cmd: ListCommand): Promise<ListsState> {
  const state = (await loadInbox(tx, cmd.inboxId, initial())) as ListsState;
  const inbox = state.inboxes[cmd.inboxId];
  if (!inbox) return state;
  if (cmd.type === "CreateList") {
    const n = await tx
      .selectFrom("lists")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("workspace_id", "=", inbox.workspaceId)
      .where("inbox_id", "=", inbox.id)
      .where("deleted_at", "is", null)
      .executeTakeFirstOrThrow();
    state.listCount[inbox.id] = Number(n.n);
    return state;
  }
  if (!isId(cmd.listId)) return state;
  const list = await tx
    .selectFrom("lists")
    .select(["list_id", "inbox_id", "version"])
    .where("workspace_id", "=", inbox.workspaceId)
    .where("list_id", "=", cmd.listId)
    .where("deleted_at", "is", null)
    .executeTakeFirst();
  if (!list) return state;
  const entries = tx.selectFrom("list_entries").where("workspace_id", "=", inbox.workspaceId).where("list_id", "=", list.list_id);
  const count = await entries.select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
  const named =
    cmd.type === "AddEntry"
      ? await entries.select(["entry_id", "email"]).where("email", "=", cmd.email).execute()
      : (cmd.type === "UpdateEntry" || cmd.type === "RemoveEntry") && isId(cmd.entryId)
        ? await entries.select(["entry_id", "email", "metadata"]).where("entry_id", "=", cmd.entryId).execute()
        : [];
  state.lists[list.list_id] = {
    id: list.list_id,
    inboxId: list.inbox_id,
    version: list.version,
    entryCount: Number(count.n),
    entries: Object.fromEntries(
      named.map((e) => [e.entry_id, "metadata" in e ? { email: e.email, metadata: (e.metadata ?? {}) as Record<string, unknown> } : { email: e.email }]),
    ),
  };
  return state;
}

function listRow(tx: Kysely<MailboxDb>, workspaceId: string, listId: string) {
  return tx.selectFrom("lists").selectAll().where("workspace_id", "=", workspaceId).where("list_id", "=", listId).executeTakeFirstOrThrow();
}

function entryRow(tx: Kysely<MailboxDb>, workspaceId: string, listId: string, entryId: string) {
  return tx
    .selectFrom("list_entries")
    .selectAll()
    .where("workspace_id", "=", workspaceId)
    .where("list_id", "=", listId)
    .where("entry_id", "=", entryId)
    .executeTakeFirstOrThrow();
}
