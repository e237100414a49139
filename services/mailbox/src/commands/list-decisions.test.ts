import { describe, expect, it } from "vitest";
import { AppError } from "@mam/contracts/errors.ts";
import { MAX_ENTRIES_PER_LIST, MAX_LISTS_PER_INBOX } from "@mam/contracts/lists-api.ts";
import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import { deciderSpec } from "@mam/testing/decider-spec.ts";
import { callers, filed, ids, inboxDeleted, mailboxes } from "./decision-fixtures.ts";
import { decide, evolve, initial, type ListCommand } from "./list-decisions.ts";

const spec = deciderSpec({ initial, evolve, decide });
const { acmeTenant, supportInbox, salesInbox, acmeSales, globexTenant } = callers;

const listCreated = (listId = ids.list, inboxId = ids.support): MailboxEvent => ({
  type: "ListCreated",
  schemaVersion: 1,
  data: { listId, inboxId, name: "VIPs", description: null },
});
const entryAdded = (email: string, entryId = ids.entry, listId = ids.list): MailboxEvent => ({
  type: "ListEntryAdded",
  schemaVersion: 1,
  data: { listId, entryId, email, displayName: null, metadata: {} },
});
const entryRemoved = (entryId = ids.entry): MailboxEvent => ({ type: "ListEntryRemoved", schemaVersion: 1, data: { listId: ids.list, entryId } });
const withList = [...mailboxes, listCreated()];
const withEntry = [...withList, entryAdded("ann@example.com")];

const on = { caller: acmeTenant, inboxId: ids.support };

describe("CreateList", () => {
  const create = (caller = acmeTenant): ListCommand => ({
    type: "CreateList",
    caller,
    inboxId: ids.support,
    listId: ids.newList,
    name: "Team",
    description: "the team",
  });

  it("creates a list of the inbox, version 1", () => {
    const { drafts } = spec
      .given(withList)
      .when(create(supportInbox))
      .expectEvents([{ type: "ListCreated", schemaVersion: 1, data: { listId: ids.newList, inboxId: ids.support, name: "Team", description: "the team" } }]);
    expect(filed(drafts)).toEqual([{ tenantId: ids.acme, workspaceId: ids.acmeMain, aggregateId: ids.newList, aggregateVersion: 1 }]);
  });

  it(`refuses the ${MAX_LISTS_PER_INBOX + 1}th list of an inbox (409); deleted lists and other inboxes' do not count`, () => {
    const full = Array.from({ length: MAX_LISTS_PER_INBOX }, (_, i) => listCreated(`01900000-0000-7000-8000-${String(i).padStart(12, "0")}`));
    spec
      .given([...mailboxes, ...full])
      .when(create())
      .expectRefusal("CONFLICT", /at most 1000 lists/);
    const deleted: MailboxEvent = { type: "ListDeleted", schemaVersion: 1, data: { listId: "01900000-0000-7000-8000-000000000000" } };
    spec
      .given([...mailboxes, ...full, deleted])
      .when(create())
      .expectEvents([expect.objectContaining({ type: "ListCreated" })]);
    const elsewhere = Array.from({ length: MAX_LISTS_PER_INBOX }, (_, i) => listCreated(`01900000-0000-7000-8000-${String(i).padStart(12, "0")}`, ids.sales));
    spec
      .given([...mailboxes, ...elsewhere])
      .when(create())
      .expectEvents([expect.objectContaining({ type: "ListCreated" })]);
  });

  it("answers 404 to another inbox's key, another workspace, another tenant, and for a deleted inbox", () => {
    for (const caller of [salesInbox, acmeSales, globexTenant]) spec.given(withList).when(create(caller)).expectRefusal("NOT_FOUND", /Inbox/);
    spec
      .given([...withList, inboxDeleted(ids.support, ["support@mail.test"])])
      .when(create())
      .expectRefusal("NOT_FOUND");
  });
});

describe("UpdateList and DeleteList", () => {
  it("updates only what is given, one version on", () => {
    const { drafts } = spec
      .given(withEntry)
      .when({ type: "UpdateList", ...on, listId: ids.list, description: null })
      .expectEvents([{ type: "ListUpdated", schemaVersion: 1, data: { listId: ids.list, description: null } }]);
    expect(filed(drafts)[0]!.aggregateVersion).toBe(3);
  });

  it("deletes a list; a deleted list is then missing", () => {
    spec
      .given(withList)
      .when({ type: "DeleteList", ...on, listId: ids.list })
      .expectEvents([{ type: "ListDeleted", schemaVersion: 1, data: { listId: ids.list } }]);
    const gone: MailboxEvent = { type: "ListDeleted", schemaVersion: 1, data: { listId: ids.list } };
    spec
      .given([...withList, gone])
      .when({ type: "DeleteList", ...on, listId: ids.list })
      .expectRefusal("NOT_FOUND", /List/);
  });

  it("finds a list by an id in capitals, as the store does", () => {
    spec
      .given(withList)
      .when({ type: "DeleteList", ...on, listId: ids.list.toUpperCase() })
      .expectEvents([{ type: "ListDeleted", schemaVersion: 1, data: { listId: ids.list } }]);
  });

  it("answers 404 for a list of another inbox, and 400 for an id that is no id, after the inbox's 404", () => {
    spec
      .given([...withList, listCreated(ids.otherList, ids.sales)])
      .when({ type: "DeleteList", ...on, listId: ids.otherList })
      .expectRefusal("NOT_FOUND", /List/);
    spec
      .given(withList)
      .when({ type: "UpdateList", ...on, listId: "nope", name: "x" })
      .expectRefusal("VALIDATION_ERROR");
    spec
      .given(withList)
      .when({ type: "UpdateList", ...on, listId: undefined, name: "x" })
      .expectRefusal("VALIDATION_ERROR");
    spec
      .given(withList)
      .when({ type: "UpdateList", ...on, caller: globexTenant, listId: "nope", name: "x" })
      .expectRefusal("NOT_FOUND", /Inbox/);
  });
});

describe("AddEntry", () => {
  const add = (email: string): ListCommand => ({
    type: "AddEntry",
    ...on,
    listId: ids.list,
    entryId: ids.newEntry,
    email,
    displayName: "Bo",
    metadata: { vip: true },
  });

  it("adds an entry to the list, one version on", () => {
    const { drafts } = spec
      .given(withEntry)
      .when(add("bo@example.com"))
      .expectEvents([
        {
          type: "ListEntryAdded",
          schemaVersion: 1,
          data: { listId: ids.list, entryId: ids.newEntry, email: "bo@example.com", displayName: "Bo", metadata: { vip: true } },
        },
      ]);
    expect(filed(drafts)[0]!.aggregateVersion).toBe(3);
  });

  it("refuses an address already in the list (409), takes it again once removed", () => {
    spec
      .given(withEntry)
      .when(add("ann@example.com"))
      .expectRefusal("CONFLICT", /already in this list/);
    spec
      .given([...withEntry, entryRemoved()])
      .when(add("ann@example.com"))
      .expectEvents([expect.objectContaining({ type: "ListEntryAdded" })]);
  });

  it(`refuses the ${MAX_ENTRIES_PER_LIST + 1}th entry (409)`, () => {
    // The count as `load` reads it: folding ten thousand entries would only slow the test.
    const state = withEntry.reduce(evolve, initial());
    state.lists[ids.list]!.entryCount = MAX_ENTRIES_PER_LIST;
    expect(() => decide(add("bo@example.com"), state)).toThrow(
      expect.objectContaining({ code: "CONFLICT", message: expect.stringMatching(/at most 10000 entries/) }),
    );
    state.lists[ids.list]!.entryCount = MAX_ENTRIES_PER_LIST - 1;
    expect(decide(add("bo@example.com"), state)).toHaveLength(1);
    // A duplicate is named as such even in a full list.
    state.lists[ids.list]!.entryCount = MAX_ENTRIES_PER_LIST;
    expect(() => decide(add("ann@example.com"), state)).toThrow(AppError);
    expect(() => decide(add("ann@example.com"), state)).toThrow(/already in this list/);
  });
});

describe("UpdateEntry and RemoveEntry", () => {
  it("updates an entry's displayName or metadata", () => {
    spec
      .given(withEntry)
      .when({ type: "UpdateEntry", ...on, listId: ids.list, entryId: ids.entry, metadata: { vip: false } })
      .expectEvents([{ type: "ListEntryUpdated", schemaVersion: 1, data: { listId: ids.list, entryId: ids.entry, metadata: { vip: false } } }]);
  });

  it("removes an entry; a removed entry is then missing", () => {
    spec
      .given(withEntry)
      .when({ type: "RemoveEntry", ...on, listId: ids.list, entryId: ids.entry })
      .expectEvents([entryRemoved()]);
    spec
      .given([...withEntry, entryRemoved()])
      .when({ type: "RemoveEntry", ...on, listId: ids.list, entryId: ids.entry })
      .expectRefusal("NOT_FOUND", /Entry/);
  });

  it("answers 400 for an entry id that is no id, 404 for an unknown one", () => {
    spec
      .given(withEntry)
      .when({ type: "UpdateEntry", ...on, listId: ids.list, entryId: "x", displayName: "A" })
      .expectRefusal("VALIDATION_ERROR");
    spec
      .given(withEntry)
      .when({ type: "UpdateEntry", ...on, listId: ids.list, entryId: ids.newEntry, displayName: "A" })
      .expectRefusal("NOT_FOUND", /Entry/);
  });
});
