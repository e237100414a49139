import { describe, expect, it } from "vitest";
import { deciderSpec } from "@mam/testing/decider-spec.ts";
import type { EventDraft } from "./execute.ts";
import { draftDeleted, draftSaved, facts, ids, owner, received } from "./message-fixtures.ts";
import { answerOf, decide, evolve, idempotencyRecordOf, initial, type IdempotencyRecord, type SendCommand } from "./send-decision.ts";

const spec = deciderSpec({ initial, evolve, decide });

const command = (over: Partial<SendCommand> = {}): SendCommand => ({
  owner,
  facts: facts({ to: ["bob@example.test"], from: { address: "me@example.test", name: null } }),
  eventId: ids.event,
  recipients: ["bob@example.test"],
  firstContactCheck: true,
  idempotency: null,
  draft: null,
  ...over,
});
const sentOf = (c: SendCommand) => ({ type: "MessageSent" as const, schemaVersion: 1 as const, data: c.facts });

describe("send: the first-contact safeguard", () => {
  it("refuses mail to an address that never wrote to the inbox", () => {
    spec
      .given([])
      .when(command())
      .expectRefusal("FORBIDDEN", /^First contact: bob@example\.test never wrote to this inbox/);
  });

  it("refuses it when the address wrote to another inbox only", () => {
    spec
      .given([received({ inboxId: ids.otherInbox })])
      .when(command())
      .expectRefusal("FORBIDDEN", /bob@example\.test/);
  });

  it("names only the recipients that never wrote", () => {
    const c = command({ recipients: ["bob@example.test", "carol@example.test"] });
    spec
      .given([received()])
      .when(c)
      .expectRefusal("FORBIDDEN", /^First contact: carol@example\.test never/);
  });

  it("sends to an address that wrote to the inbox, with the event id derived before", () => {
    const c = command();
    const { drafts } = spec
      .given([received()])
      .when(c)
      .expectEvents([sentOf(c)]);
    expect(drafts[0]).toMatchObject({ eventId: ids.event, tenantId: ids.tenant, workspaceId: ids.workspace, aggregateId: ids.sent, aggregateVersion: 1 });
  });

  it("sends to anyone once the caller verified the address", () => {
    const c = command({ firstContactCheck: false });
    spec
      .given([])
      .when(c)
      .expectEvents([sentOf(c)]);
  });

  it("allows a reply to a known sender (a reply is not checked: the address is in the conversation)", () => {
    const reply = command({ firstContactCheck: false, facts: facts({ inReplyTo: "<m1@example.test>", references: ["<m1@example.test>"] }) });
    spec
      .given([received({ messageIdHeader: "<m1@example.test>" })])
      .when(reply)
      .expectEvents([sentOf(reply)]);
  });

  it("decided again (a retry after a failed commit), makes the same event id", () => {
    const a = spec.given([received()]).when(command()).outcome.drafts as EventDraft[];
    const b = spec.given([received()]).when(command()).outcome.drafts as EventDraft[];
    expect(a[0]!.eventId).toBe(b[0]!.eventId);
  });
});

describe("send: the Idempotency-Key", () => {
  const key = { key: "k-1", requestHash: "hash-of-request" };
  const first = command({ firstContactCheck: false, idempotency: key });
  // What the first send's answer stored, with its events.
  const record = idempotencyRecordOf(first, initial()) as IdempotencyRecord;
  const afterFirst = deciderSpec({ initial: () => ({ ...initial(), idempotency: record }), evolve, decide });
  // A retry is composed again, with a new message id; only its request's hash is the same.
  const retry = command({ firstContactCheck: false, idempotency: key, facts: facts({ messageId: ids.newMessage }) });

  it("the first send with a key sends and records its answer", () => {
    spec
      .given([])
      .when(first)
      .expectEvents([sentOf(first)]);
    // The hash of the body as written (what earlier releases compare) and of the request as parsed.
    expect(record).toEqual({
      requestHash: "hash-of-request",
      canonicalHash: "hash-of-request",
      response: { id: ids.sent, threadId: ids.thread, status: "sent", messageId: `<${ids.sent}@example.test>` },
    });
  });

  it("the same key with the same request sends nothing and gets the first answer", () => {
    afterFirst.given([]).when(retry).expectEvents([]);
    expect(answerOf(retry, { ...initial(), idempotency: record })).toEqual(record.response);
    expect(idempotencyRecordOf(retry, { ...initial(), idempotency: record })).toBeNull();
  });

  it("the same key with another request is a conflict", () => {
    afterFirst
      .given([])
      .when({ ...retry, idempotency: { key: "k-1", requestHash: "another" } })
      .expectRefusal("CONFLICT", /different request/);
  });

  it("a record an earlier release made (its hash of the body as written) answers the same request: nothing sent again", () => {
    const upgraded = { ...retry, idempotency: { key: "k-1", requestHash: "hash-of-the-parsed-request", earlierHash: "hash-of-request" } };
    afterFirst.given([]).when(upgraded).expectEvents([]);
    afterFirst
      .given([])
      .when({ ...upgraded, idempotency: { ...upgraded.idempotency, earlierHash: "another" } })
      .expectRefusal("CONFLICT", /different request/);
  });

  it("records both hashes, and a retry written another way (a body hashing otherwise as written) matches by the parsed one", () => {
    const keyed = command({ firstContactCheck: false, idempotency: { key: "k-2", requestHash: "parsed", earlierHash: "as-written" } });
    const stored = idempotencyRecordOf(keyed, initial()) as IdempotencyRecord;
    expect(stored).toMatchObject({ requestHash: "as-written", canonicalHash: "parsed" });
    const then = deciderSpec({ initial: () => ({ ...initial(), idempotency: stored }), evolve, decide });
    then
      .given([])
      .when({ ...retry, idempotency: { key: "k-2", requestHash: "parsed", earlierHash: "written-otherwise" } })
      .expectEvents([]);
  });

  it("a send without a key records nothing", () => {
    expect(idempotencyRecordOf(command(), initial())).toBeNull();
  });
});

describe("send: a draft, deleted by sending it", () => {
  const c = command({ firstContactCheck: false, draft: { draftId: ids.draft, version: 1 } });

  it("sends the message and deletes the draft, naming the message", () => {
    const { drafts } = spec
      .given([draftSaved({ to: ["bob@example.test"], subject: "Hello", plainBody: "hi" })])
      .when(c)
      .expectEvents([sentOf(c), draftDeleted(ids.sent)]);
    expect(drafts[1]).toMatchObject({ aggregateId: ids.draft, aggregateVersion: 2 });
  });

  it("refuses a draft changed since it was read", () => {
    spec
      .given([draftSaved({ subject: "a" }), draftSaved({ subject: "b" }, false)])
      .when(c)
      .expectRefusal("CONFLICT", /changed while being sent/);
  });

  it("refuses a draft sent (or deleted) meanwhile, so it is not sent twice", () => {
    spec
      .given([draftSaved({ subject: "a" }), draftDeleted(ids.newMessage)])
      .when(c)
      .expectRefusal("NOT_FOUND", /^Draft not found$/);
  });

  it("refuses a draft of another inbox", () => {
    spec
      .given([draftSaved({ subject: "a" }, true, ids.otherInbox)])
      .when(c)
      .expectRefusal("NOT_FOUND");
  });

  it("checks first contact before the draft (an unverified draft to a stranger is refused as such)", () => {
    spec
      .given([draftSaved({ subject: "a" })])
      .when({ ...c, firstContactCheck: true })
      .expectRefusal("FORBIDDEN");
  });
});
