import { describe, expect, it } from "vitest";
import { deciderSpec } from "@mam/testing/decider-spec.ts";
import { decide, evolve, initial, type DeliveryRecord, type Outcome } from "./delivery-record-decision.ts";
import { bounced, delivered, flagged, ids, owner, received, sent } from "./message-fixtures.ts";

const spec = deciderSpec({ initial, evolve, decide });
const report = (over: Partial<Extract<DeliveryRecord, { kind: "report" }>> = {}): DeliveryRecord => ({
  kind: "report",
  owner,
  messageId: ids.sent,
  recipients: ["bob@example.test"],
  reason: "550 5.1.1 no such user",
  ...over,
});

describe("a bounce report (DSN) that came back to a message's return path", () => {
  it("marks the message the return path names bounced", () => {
    const { drafts } = spec
      .given([sent()])
      .when(report())
      .expectEvents([bounced(ids.sent, ["bob@example.test"])]);
    expect(drafts[0]).toMatchObject({ aggregateId: ids.sent, aggregateVersion: 2, tenantId: ids.tenant, workspaceId: ids.workspace });
  });

  it("marks it after other outcomes, one version on", () => {
    const { drafts } = spec
      .given([sent(), delivered(ids.sent, ["carol@example.test"])])
      .when(report())
      .expectEvents([bounced(ids.sent, ["bob@example.test"])]);
    expect(drafts[0]).toMatchObject({ aggregateVersion: 3 });
  });

  it("records nothing for a message bounced already", () => {
    spec
      .given([sent(), bounced(ids.sent, ["bob@example.test"])])
      .when(report())
      .expectEvents([]);
  });

  it("bounces the recipients a second report names, after a first bounced others (each final MX reports its own)", () => {
    // A relay accepted both; the MX of each refused its own and sent its own report.
    const history = [sent({ to: ["a@x.test", "b@y.test"] }), delivered(ids.sent, ["a@x.test", "b@y.test"]), bounced(ids.sent, ["a@x.test"], "550 a")];
    const { drafts } = spec
      .given(history)
      .when(report({ recipients: ["b@y.test"], reason: "550 b" }))
      .expectEvents([bounced(ids.sent, ["b@y.test"], "550 b")]);
    expect(drafts[0]).toMatchObject({ aggregateVersion: 4 });
  });

  it("bounces only those it names that are not bounced already, whatever their case", () => {
    spec
      .given([sent(), bounced(ids.sent, ["a@x.test"])])
      .when(report({ recipients: ["A@X.test", "b@y.test", "b@Y.test"] }))
      .expectEvents([bounced(ids.sent, ["b@y.test"])]);
  });

  it("after a server refused a recipient at RCPT, a report bounces the others, and nothing for that one", () => {
    const refused = bounced(ids.sent, ["b@y.test"], "550 5.1.1 refused at RCPT");
    spec
      .given([sent(), delivered(ids.sent, ["a@x.test"]), refused])
      .when(report({ recipients: ["a@x.test"] }))
      .expectEvents([bounced(ids.sent, ["a@x.test"])]);
    spec
      .given([sent(), delivered(ids.sent, ["a@x.test"]), refused])
      .when(report({ recipients: ["b@y.test"] }))
      .expectEvents([]);
  });

  it("records nothing for the same report delivered again (its recipients are bounced already)", () => {
    const first = spec.given([sent()]).when(report()).outcome.events;
    spec
      .given([sent(), ...first])
      .when(report())
      .expectEvents([]);
  });

  it("derives the event's id from what it records: decided again, the same event", () => {
    const id = (recipients: string[]) => (spec.given([sent()]).when(report({ recipients })).outcome.drafts[0] as { eventId?: string }).eventId;
    expect(id(["a@x.test", "b@y.test"])).toBeDefined();
    expect(id(["a@x.test", "b@y.test"])).toBe(id(["b@y.test", "a@x.test"]));
    expect(id(["a@x.test"])).not.toBe(id(["b@y.test"]));
  });

  it("records nothing about mail that was not sent: received, or unknown", () => {
    spec
      .given([received({ messageId: ids.sent })])
      .when(report())
      .expectEvents([]);
    spec.given([]).when(report()).expectEvents([]);
  });
});

describe("a delivery outcome of a send", () => {
  const outcome: Outcome = { type: "MessageDelivered", schemaVersion: 1, data: { messageId: ids.sent, recipients: ["bob@example.test"], via: "mx" } };
  const record = (o: Outcome = outcome): DeliveryRecord => ({ kind: "outcome", owner, messageId: ids.sent, outcome: o, eventId: ids.event });

  it("records it with its derived event id, one version on", () => {
    const { drafts } = spec
      .given([sent(), flagged(ids.sent, { isStarred: true })])
      .when(record())
      .expectEvents([outcome]);
    expect(drafts[0]).toMatchObject({ eventId: ids.event, aggregateId: ids.sent, aggregateVersion: 3 });
  });

  it("records a bounce too, even after a delivery to others (each recipient has its own outcome)", () => {
    const bounce: Outcome = { type: "MessageBounced", schemaVersion: 1, data: { messageId: ids.sent, recipients: ["carol@example.test"], reason: "550" } };
    spec
      .given([sent(), delivered(ids.sent, ["bob@example.test"])])
      .when(record(bounce))
      .expectEvents([bounce]);
  });

  it("records it for a message not visible (version as if just sent)", () => {
    const { drafts } = spec.given([]).when(record()).expectEvents([outcome]);
    expect(drafts[0]).toMatchObject({ aggregateVersion: 2 });
  });
});
