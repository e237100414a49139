import { describe, expect, it } from "vitest";
import { deciderSpec } from "@mam/testing/decider-spec.ts";
import type { MessageFacts } from "@mam/contracts/message-events.ts";
import type { EventDraft } from "./execute.ts";
import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import { inboxCreated, inboxDeleted } from "./decision-fixtures.ts";
import { decide, evolve, filingOf, initial, unfileable, type Filing, type FilingCommand } from "./filing-decision.ts";
import { deleted, facts, ids, owner, received, sent } from "./message-fixtures.ts";

const spec = deciderSpec({ initial, evolve, decide });

/** Our inbox and another of the workspace, live: mail is filed in them. */
const inboxes: MailboxEvent[] = [inboxCreated(ids.inbox, ids.tenant, ids.workspace, "me"), inboxCreated(ids.otherInbox, ids.tenant, ids.workspace, "other")];
const workspaceClosed: MailboxEvent = { type: "WorkspaceClosed", schemaVersion: 1, data: { workspaceId: ids.workspace, tenantId: ids.tenant } };
const OTHER_WORKSPACE = "0190aaaa-0000-7000-8000-000000000003";

/** An inbound message for our inbox, as SMTP ingress hands it over. */
function filing(key: string, over: Partial<MessageFacts> = {}, inboxId = ids.inbox): Filing {
  const {
    messageId: _m,
    inboxId: _i,
    threadId: _t,
    ...rest
  } = facts({ messageIdHeader: `<${key}@sender.test>`, from: { address: "bob@sender.test", name: null }, ...over });
  return filingOf(owner, inboxId, rest, { dedupeParts: ["smtp", key], sourceMessageId: null });
}
const batch = (...filings: Filing[]): FilingCommand => ({ filings });
const threadsOf = (drafts: unknown[]) => (drafts as EventDraft[]).map((d) => (d.event.type === "MessageReceived" ? d.event.data.threadId : null));

/** What is stored already: a message of ours with this header, in this thread. */
const stored = (header: string, threadId: string, messageId: string, inboxId = ids.inbox) => sent({ messageId, messageIdHeader: header, threadId, inboxId });
const T1 = "0190aaaa-0000-7000-8000-0000000000b1";
const T2 = "0190aaaa-0000-7000-8000-0000000000b2";
const M1 = "0190aaaa-0000-7000-8000-000000000101";
const M2 = "0190aaaa-0000-7000-8000-000000000102";

describe("filing inbound mail", () => {
  it("files a new message in a thread of its own, with ids derived from the delivery", () => {
    const f = filing("q1");
    const { drafts } = spec
      .given(inboxes)
      .when(batch(f))
      .expectEvents([
        {
          type: "MessageReceived",
          schemaVersion: 1,
          data: { ...f.facts, messageId: f.messageId, inboxId: ids.inbox, threadId: f.newThreadId, bcc: [], sourceMessageId: null, authentication: null },
        },
      ]);
    expect(drafts[0]).toMatchObject({ eventId: f.eventId, aggregateId: f.messageId, aggregateVersion: 1, tenantId: ids.tenant, workspaceId: ids.workspace });
  });

  it("derives the same ids from the same delivery to the same inbox, others for another inbox", () => {
    expect(filing("q1")).toEqual(filing("q1"));
    expect(filing("q1", {}, ids.otherInbox).messageId).not.toBe(filing("q1").messageId);
  });

  it("files nothing for a message filed already (the same delivery again)", () => {
    const f = filing("q1");
    spec
      .given([...inboxes, received({ messageId: f.messageId, threadId: f.newThreadId })])
      .when(batch(f))
      .expectEvents([]);
  });

  it("files once a delivery that is twice in one batch", () => {
    const { events } = spec.given(inboxes).when(batch(filing("q1"), filing("q1"))).outcome;
    expect(events).toHaveLength(1);
  });
});

describe("an inbox that takes no mail (smtp-ingress's directory may list it for a while)", () => {
  it("files nothing for a deleted inbox, and says which filing that was", () => {
    const gone = filing("q1");
    const kept = filing("q1", {}, ids.otherInbox);
    const history = [...inboxes, inboxDeleted(ids.inbox, ["me@mail.test"])];
    const { drafts } = spec.given(history).when(batch(gone, kept)).outcome;
    expect((drafts as EventDraft[]).map((d) => d.aggregateId)).toEqual([kept.messageId]);
    expect(unfileable(batch(gone, kept), history.reduce(evolve, initial()))).toEqual([gone]);
  });

  it("files nothing in a workspace that ended, whatever its inboxes' rows say", () => {
    const history = [...inboxes, workspaceClosed];
    spec
      .given(history)
      .when(batch(filing("q1"), filing("q2", {}, ids.otherInbox)))
      .expectEvents([]);
    expect(unfileable(batch(filing("q1")), history.reduce(evolve, initial()))).toEqual([filing("q1")]);
  });

  it("files nothing for an inbox created after its workspace ended, or never created", () => {
    spec
      .given([workspaceClosed, ...inboxes])
      .when(batch(filing("q1")))
      .expectEvents([]);
    spec
      .given([])
      .when(batch(filing("q1")))
      .expectEvents([]);
  });

  it("files nothing when the filing names another workspace than the inbox's", () => {
    const { facts: f } = filing("q1");
    const elsewhere = filingOf({ tenantId: ids.tenant, workspaceId: OTHER_WORKSPACE }, ids.inbox, f, { dedupeParts: ["smtp", "q1"], sourceMessageId: null });
    spec.given(inboxes).when(batch(elsewhere)).expectEvents([]);
  });

  it("another workspace's end leaves this one's inboxes taking mail", () => {
    const otherClosed: MailboxEvent = { type: "WorkspaceClosed", schemaVersion: 1, data: { workspaceId: OTHER_WORKSPACE, tenantId: ids.tenant } };
    const { events } = spec.given([...inboxes, otherClosed]).when(batch(filing("q1"))).outcome;
    expect(events).toHaveLength(1);
    expect(unfileable(batch(filing("q1")), [...inboxes, otherClosed].reduce(evolve, initial()))).toEqual([]);
  });
});

describe("threading", () => {
  it("joins the thread of the message it answers (In-Reply-To)", () => {
    const { drafts } = spec.given([...inboxes, stored("<a@x>", T1, M1)]).when(batch(filing("q1", { inReplyTo: "<a@x>" }))).outcome;
    expect(threadsOf(drafts)).toEqual([T1]);
  });

  it("prefers In-Reply-To to References", () => {
    const f = filing("q1", { inReplyTo: "<a@x>", references: ["<b@x>"] });
    expect(threadsOf(spec.given([...inboxes, stored("<a@x>", T1, M1), stored("<b@x>", T2, M2)]).when(batch(f)).outcome.drafts)).toEqual([T1]);
  });

  it("without a known In-Reply-To, takes References from the nearest (the last) back", () => {
    const given = [...inboxes, stored("<a@x>", T1, M1), stored("<b@x>", T2, M2)];
    expect(threadsOf(spec.given(given).when(batch(filing("q1", { inReplyTo: "<gone@x>", references: ["<a@x>", "<b@x>"] }))).outcome.drafts)).toEqual([T2]);
    expect(threadsOf(spec.given(given).when(batch(filing("q2", { references: ["<a@x>", "<unknown@x>"] }))).outcome.drafts)).toEqual([T1]);
  });

  it("threads under the first message stored with a header, deleted or not", () => {
    const given = [...inboxes, stored("<a@x>", T1, M1), deleted(M1), stored("<a@x>", T2, M2)];
    expect(threadsOf(spec.given(given).when(batch(filing("q1", { inReplyTo: "<a@x>" }))).outcome.drafts)).toEqual([T1]);
  });

  it("does not join a thread of another inbox", () => {
    const f = filing("q1", { inReplyTo: "<a@x>" });
    expect(threadsOf(spec.given([...inboxes, stored("<a@x>", T1, M1, ids.otherInbox)]).when(batch(f)).outcome.drafts)).toEqual([f.newThreadId]);
  });

  it("joins a parent filed earlier in the same batch, also through References", () => {
    const parent = filing("p");
    const child = filing("c", { inReplyTo: "<p@sender.test>" });
    const grandchild = filing("g", { references: ["<p@sender.test>", "<c@sender.test>"] });
    const { drafts } = spec.given(inboxes).when(batch(parent, child, grandchild)).outcome;
    expect(threadsOf(drafts)).toEqual([parent.newThreadId, parent.newThreadId, parent.newThreadId]);
  });

  it("does not join a parent that comes later in the batch", () => {
    const child = filing("c", { inReplyTo: "<p@sender.test>" });
    const parent = filing("p");
    expect(threadsOf(spec.given(inboxes).when(batch(child, parent)).outcome.drafts)).toEqual([child.newThreadId, parent.newThreadId]);
  });
});
