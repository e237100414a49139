import { describe, expect, it } from "vitest";
import { deciderSpec } from "@mam/testing/decider-spec.ts";
import { decide, evolve, initial, type Flags, type MessageCommand } from "./message-decision.ts";
import { deleted, flagged, ids, owner, received } from "./message-fixtures.ts";

const spec = deciderSpec({ initial, evolve, decide });
const mine = ids.sent;

const flag = (flags: Flags, inboxId = ids.inbox): MessageCommand => ({ kind: "flag", owner, inboxId, messageId: mine, flags });
const remove = (inboxId = ids.inbox): MessageCommand => ({ kind: "delete", owner, inboxId, messageId: mine });

describe("patch a message", () => {
  it("marks it read", () => {
    const { drafts } = spec
      .given([received()])
      .when(flag({ isRead: true }))
      .expectEvents([flagged(mine, { isRead: true })]);
    expect(drafts[0]).toMatchObject({ aggregateId: mine, aggregateVersion: 2, tenantId: ids.tenant, workspaceId: ids.workspace });
  });

  it("sets only the flags given", () => {
    spec
      .given([received(), flagged(mine, { isRead: true })])
      .when(flag({ isStarred: true, isArchived: false }))
      .expectEvents([flagged(mine, { isStarred: true, isArchived: false })]);
  });

  it("versions follow every event about the message", () => {
    const { drafts } = spec.given([received(), flagged(mine, { isRead: true }), flagged(mine, { isRead: false })]).when(flag({ isRead: true })).outcome;
    expect(drafts[0]).toMatchObject({ aggregateVersion: 4 });
  });

  it("refuses a message deleted, of another inbox, or that never was", () => {
    spec
      .given([received(), deleted(mine)])
      .when(flag({ isRead: true }))
      .expectRefusal("NOT_FOUND", /^Message not found$/);
    spec
      .given([received()])
      .when(flag({ isRead: true }, ids.otherInbox))
      .expectRefusal("NOT_FOUND");
    spec
      .given([])
      .when(flag({ isRead: true }))
      .expectRefusal("NOT_FOUND");
  });
});

describe("delete a message", () => {
  it("deletes it (softly: the event only marks it)", () => {
    const { drafts } = spec
      .given([received()])
      .when(remove())
      .expectEvents([deleted(mine)]);
    expect(drafts[0]).toMatchObject({ aggregateVersion: 2 });
  });

  it("refuses one deleted already or of another inbox", () => {
    spec
      .given([received(), deleted(mine)])
      .when(remove())
      .expectRefusal("NOT_FOUND");
    spec.given([received()]).when(remove(ids.otherInbox)).expectRefusal("NOT_FOUND");
  });
});
