import { AppError, notFound } from "@mam/contracts/errors.ts";
import { MAX_ENTRIES_PER_LIST, MAX_LISTS_PER_INBOX } from "@mam/contracts/lists-api.ts";
import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import { mergeMetadata } from "@mam/contracts/mailbox-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { EventDraft } from "./execute.ts";
import { idParam } from "./ids.ts";
import { evolve as evolveInboxes, inboxVisibleTo, type InboxesState, type InboxState } from "./inbox-state.ts";

export interface ListState {
  id: string;
  inboxId: string;
  version: number;
  entryCount: number;
  /** The entries a command is about (`load` reads those only); every entry when folded from events. */
  entries: Record<string, { email: string; metadata?: Record<string, unknown> }>;
}

export interface ListsState extends InboxesState {
  /** Live lists. */
  lists: Record<string, ListState>;
  /** Live lists per inbox. */
  listCount: Record<string, number>;
}

type Ref = { caller: ScopeClaims; inboxId: string };
/** A list or entry id as given: checked for its form after the inbox (a stranger sees a 404 first). */
type RawId = string | undefined;

export type ListCommand =
  | (Ref & { type: "CreateList"; listId: string; name: string; description: string | null })
  | (Ref & { type: "UpdateList"; listId: RawId; name?: string; description?: string | null })
  | (Ref & { type: "DeleteList"; listId: RawId })
  | (Ref & { type: "AddEntry"; listId: RawId; entryId: string; email: string; displayName: string | null; metadata: Record<string, unknown> })
  | (Ref & { type: "UpdateEntry"; listId: RawId; entryId: RawId; displayName?: string | null; metadata?: Record<string, unknown> })
  | (Ref & { type: "RemoveEntry"; listId: RawId; entryId: RawId });

export const initial = (): ListsState => ({ inboxes: {}, claims: {}, lists: {}, listCount: {} });

const about = (list: { id: string; version: number }, inbox: InboxState, event: MailboxEvent): EventDraft => ({
  event,
  tenantId: inbox.tenantId,
  workspaceId: inbox.workspaceId,
  aggregateId: list.id,
  aggregateVersion: list.version + 1,
});

/** A live list of this inbox; a list of another inbox is as missing as one that never was. */
function listOf(state: ListsState, inbox: InboxState, rawId: RawId): ListState {
  const id = idParam(rawId, "list id");
  const list = state.lists[id];
  if (!list || list.inboxId !== inbox.id) throw notFound("List");
  return list;
}

function entryOf(list: ListState, rawId: RawId): string {
  const id = idParam(rawId, "entry id");
  if (!list.entries[id]) throw notFound("Entry");
  return id;
}

export function decide(cmd: ListCommand, state: ListsState): EventDraft[] {
  const inbox = inboxVisibleTo(state, cmd.caller, cmd.inboxId);
  switch (cmd.type) {
    case "CreateList": {
      if ((state.listCount[inbox.id] ?? 0) >= MAX_LISTS_PER_INBOX) throw new AppError("CONFLICT", `An inbox holds at most ${MAX_LISTS_PER_INBOX} lists`);
      const data = { listId: cmd.listId, inboxId: inbox.id, name: cmd.name, description: cmd.description };
      return [about({ id: cmd.listId, version: 0 }, inbox, { type: "ListCreated", schemaVersion: 1, data })];
    }
    case "UpdateList": {
      const list = listOf(state, inbox, cmd.listId);
      const data = {
        listId: list.id,
        ...(cmd.name !== undefined && { name: cmd.name }),
        ...(cmd.description !== undefined && { description: cmd.description }),
      };
      return [about(list, inbox, { type: "ListUpdated", schemaVersion: 1, data })];
    }
    case "DeleteList": {
      const list = listOf(state, inbox, cmd.listId);
      return [about(list, inbox, { type: "ListDeleted", schemaVersion: 1, data: { listId: list.id } })];
    }
    case "AddEntry": {
      const list = listOf(state, inbox, cmd.listId);
      if (Object.values(list.entries).some((e) => e.email === cmd.email)) throw new AppError("CONFLICT", `${cmd.email} is already in this list`);
      if (list.entryCount >= MAX_ENTRIES_PER_LIST) throw new AppError("CONFLICT", `A list holds at most ${MAX_ENTRIES_PER_LIST} entries`);
      const data = { listId: list.id, entryId: cmd.entryId, email: cmd.email, displayName: cmd.displayName, metadata: cmd.metadata };
      return [about(list, inbox, { type: "ListEntryAdded", schemaVersion: 1, data })];
    }
    case "UpdateEntry": {
      const list = listOf(state, inbox, cmd.listId);
      const entryId = entryOf(list, cmd.entryId);
      const data = {
        listId: list.id,
        entryId,
        ...(cmd.displayName !== undefined && { displayName: cmd.displayName }),
        // Merged into what the entry has (PATCH is merge-style); the event carries the result whole.
        ...(cmd.metadata !== undefined && { metadata: mergeMetadata(list.entries[entryId]!.metadata ?? {}, cmd.metadata) }),
      };
      return [about(list, inbox, { type: "ListEntryUpdated", schemaVersion: 1, data })];
    }
    case "RemoveEntry": {
      const list = listOf(state, inbox, cmd.listId);
      const entryId = entryOf(list, cmd.entryId);
      return [about(list, inbox, { type: "ListEntryRemoved", schemaVersion: 1, data: { listId: list.id, entryId } })];
    }
    default: {
      const unreachable: never = cmd;
      throw new Error(`unhandled list command ${(unreachable as ListCommand).type}`);
    }
  }
}

type ListEvent = Extract<MailboxEvent, { type: "ListCreated" | "ListUpdated" | "ListDeleted" | "ListEntryAdded" | "ListEntryUpdated" | "ListEntryRemoved" }>;
const LIST_EVENTS: ReadonlySet<string> = new Set<ListEvent["type"]>([
  "ListCreated",
  "ListUpdated",
  "ListDeleted",
  "ListEntryAdded",
  "ListEntryUpdated",
  "ListEntryRemoved",
]);
const isListEvent = (e: MailboxEvent): e is ListEvent => LIST_EVENTS.has(e.type);

export function evolve(state: ListsState, e: MailboxEvent): ListsState {
  if (!isListEvent(e)) return { ...state, ...evolveInboxes(state, e) };
  switch (e.type) {
    case "ListCreated": {
      const list: ListState = { id: e.data.listId, inboxId: e.data.inboxId, version: 1, entryCount: 0, entries: {} };
      return { ...state, lists: { ...state.lists, [list.id]: list }, listCount: counted(state, list.inboxId, +1) };
    }
    case "ListUpdated":
      return withList(state, e.data.listId, (l) => l);
    case "ListDeleted": {
      const list = state.lists[e.data.listId];
      if (!list) return state;
      const { [list.id]: _gone, ...lists } = state.lists;
      return { ...state, lists, listCount: counted(state, list.inboxId, -1) };
    }
    case "ListEntryAdded":
      return withList(state, e.data.listId, (l) => ({
        ...l,
        entryCount: l.entryCount + 1,
        entries: { ...l.entries, [e.data.entryId]: { email: e.data.email, metadata: e.data.metadata } },
      }));
    case "ListEntryUpdated": {
      const { entryId, metadata } = e.data;
      return withList(state, e.data.listId, (l) => {
        const entry = l.entries[entryId];
        return entry && metadata !== undefined ? { ...l, entries: { ...l.entries, [entryId]: { ...entry, metadata } } } : l;
      });
    }
    case "ListEntryRemoved":
      return withList(state, e.data.listId, (l) => {
        const { [e.data.entryId]: _gone, ...entries } = l.entries;
        return { ...l, entryCount: l.entryCount - 1, entries };
      });
    default: {
      const unreachable: never = e;
      throw new Error(`unhandled list event ${(unreachable as ListEvent).type}`);
    }
  }
}

/** An event about a list: its version moves on, whatever else changes. */
function withList(state: ListsState, listId: string, change: (l: ListState) => ListState): ListsState {
  const list = state.lists[listId];
  if (!list) return state;
  return { ...state, lists: { ...state.lists, [listId]: { ...change(list), version: list.version + 1 } } };
}

const counted = (state: ListsState, inboxId: string, by: number) => ({ ...state.listCount, [inboxId]: (state.listCount[inboxId] ?? 0) + by });
