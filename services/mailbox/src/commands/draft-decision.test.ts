import { describe, expect, it } from "vitest";
import { deciderSpec } from "@mam/testing/decider-spec.ts";
import { decide, evolve, initial, type DraftCommand, type Fields } from "./draft-decision.ts";
import { EMPTY_FIELDS, draftDeleted, draftSaved, ids, owner } from "./message-fixtures.ts";

const spec = deciderSpec({ initial, evolve, decide });

const save = (patch: Partial<Fields>, create = false): DraftCommand => ({
  kind: "save",
  owner,
  inboxId: ids.inbox,
  draftId: ids.draft,
  create,
  patch,
});
const remove = (inboxId = ids.inbox): DraftCommand => ({ kind: "delete", owner, inboxId, draftId: ids.draft });

describe("save a draft", () => {
  it("creates it from the fields given, the others empty", () => {
    const { drafts } = spec
      .given([])
      .when(save({ to: ["bob@example.test"], subject: "Hi" }, true))
      .expectEvents([draftSaved({ to: ["bob@example.test"], subject: "Hi" })]);
    expect(drafts[0]).toMatchObject({ aggregateId: ids.draft, aggregateVersion: 1 });
  });

  it("merge-patches: omitted fields stay as they were, null clears", () => {
    const { drafts } = spec
      .given([draftSaved({ to: ["bob@example.test"], subject: "Hi", plainBody: "one" })])
      .when(save({ subject: "Hello", plainBody: null, cc: undefined }))
      .expectEvents([draftSaved({ to: ["bob@example.test"], subject: "Hello", plainBody: null }, false)]);
    expect(drafts[0]).toMatchObject({ aggregateVersion: 2 });
  });

  it("counts versions across updates", () => {
    const { drafts } = spec.given([draftSaved({}), draftSaved({ subject: "a" }, false)]).when(save({ subject: "b" })).outcome;
    expect(drafts[0]).toMatchObject({ aggregateVersion: 3 });
  });

  it("refuses to update a draft that is deleted, of another inbox, or never was", () => {
    spec
      .given([draftSaved({}), draftDeleted()])
      .when(save({ subject: "a" }))
      .expectRefusal("NOT_FOUND", /^Draft not found$/);
    spec
      .given([draftSaved({}, true, ids.otherInbox)])
      .when(save({ subject: "a" }))
      .expectRefusal("NOT_FOUND");
    spec
      .given([])
      .when(save({ subject: "a" }))
      .expectRefusal("NOT_FOUND");
  });

  it("a new draft starts from the empty fields", () => {
    spec
      .given([])
      .when(save({}, true))
      .expectEvents([{ type: "DraftSaved", schemaVersion: 1, data: { draftId: ids.draft, inboxId: ids.inbox, created: true, fields: EMPTY_FIELDS } }]);
  });
});

describe("delete a draft", () => {
  it("deletes a live draft (not sent)", () => {
    const { drafts } = spec
      .given([draftSaved({})])
      .when(remove())
      .expectEvents([draftDeleted(null)]);
    expect(drafts[0]).toMatchObject({ aggregateId: ids.draft, aggregateVersion: 2 });
  });

  it("refuses a draft deleted already or of another inbox", () => {
    spec
      .given([draftSaved({}), draftDeleted()])
      .when(remove())
      .expectRefusal("NOT_FOUND");
    spec
      .given([draftSaved({})])
      .when(remove(ids.otherInbox))
      .expectRefusal("NOT_FOUND");
  });
});
