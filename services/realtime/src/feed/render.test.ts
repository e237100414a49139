import { describe, expect, it } from "vitest";
import type { MessageFacts } from "@mam/contracts/message-events.ts";
import { FeedEvent, PublicEventId, publicEventId, publicEventTime } from "@mam/contracts/realtime-feed.ts";
import { fitEntry } from "./fit.ts";
import { domainNameOf, renderDomainVerified, renderMessageEvent, type MessageEvent, type Scoped, type Shown } from "./render.ts";

const ids = {
  tenant: "0190aaaa-0000-7000-8000-000000000001",
  workspace: "0190aaaa-0000-7000-8000-000000000002",
  inbox: "0190aaaa-0000-7000-8000-0000000000a1",
  message: "0190aaaa-0000-7000-8000-0000000000e1",
  thread: "0190aaaa-0000-7000-8000-0000000000f1",
  event: "0190aaaa-0000-7000-8000-0000000000c1",
  attachment: "0190aaaa-0000-7000-8000-0000000000b1",
};
const at = "2026-12-01T10:00:00.000Z";
const facts: MessageFacts = {
  messageId: ids.message,
  inboxId: ids.inbox,
  threadId: ids.thread,
  from: { address: "ann@example.test", name: 'Ann "A" Agent' },
  to: ["bob@example.test"],
  cc: ["cat@example.test"],
  bcc: ["secret@example.test"],
  replyTo: null,
  subject: "Hello",
  messageIdHeader: "<m1@example.test>",
  inReplyTo: null,
  references: [],
  rawHash: "raw",
  rawSize: 100,
  plainHash: "plain",
  htmlHash: null,
  preview: "Hello there",
  attachments: [{ id: ids.attachment, filename: "a.pdf", contentType: "application/pdf", sizeBytes: 10, hash: "h" }],
};
const envelope = {
  tenantId: ids.tenant,
  workspaceId: ids.workspace,
  aggregateId: ids.message,
  aggregateVersion: 1,
  occurredAt: at,
  causationId: null,
  correlationId: null,
  actor: { type: "system" as const, id: null },
  context: "mailbox",
};
const event = <E extends MessageEvent>(e: Pick<E, "type" | "data">, id = ids.event) => ({ ...envelope, id, schemaVersion: 1, ...e }) as E & Scoped;

describe("rendering the mailbox's events", () => {
  it("a received message the mailbox does not show is rendered from its event's facts, without bodies or bcc", () => {
    const e = renderMessageEvent(event({ type: "MessageReceived", data: { ...facts, sourceMessageId: null } }), undefined);
    expect(FeedEvent.parse(e)).toEqual(e);
    expect(e).toMatchObject({ eventId: `evt_${ids.event}`, eventType: "message.received", inboxId: ids.inbox, occurredAt: at });
    expect(e.message).toMatchObject({ direction: "inbound", from: '"Ann A Agent" <ann@example.test>', plainBody: null, htmlBody: null, bodyTruncated: false });
    expect(e.message!.attachments).toEqual([{ id: ids.attachment, filename: "a.pdf", contentType: "application/pdf", sizeBytes: 10 }]);
    expect(JSON.stringify(e)).not.toContain("secret@example.test");
    expect(e.thread).toEqual({ threadId: ids.thread, subject: "Hello" });
  });

  it("a delivery or bounce carries the mailbox's message when shown, and its outcome either way", () => {
    const shown: Shown = {
      message: { ...renderMessageEvent(event({ type: "MessageSent", data: facts }), undefined).message!, plainBody: "body" },
      thread: { threadId: ids.thread, subject: "Thread subject" },
    };
    const delivered = renderMessageEvent(
      event({ type: "MessageDelivered", data: { messageId: ids.message, recipients: ["bob@example.test"], via: "mx" } }),
      shown,
    );
    expect(delivered).toMatchObject({
      eventType: "message.delivered",
      inboxId: ids.inbox,
      delivery: { recipients: ["bob@example.test"], via: "mx" },
      thread: shown.thread,
    });
    expect(delivered.message!.plainBody).toBe("body");
    const bounced = renderMessageEvent(
      event({ type: "MessageBounced", data: { messageId: ids.message, recipients: ["x@example.test"], reason: "550" } }),
      undefined,
    );
    expect(FeedEvent.parse(bounced)).toEqual(bounced);
    expect(bounced).toMatchObject({ eventType: "message.bounced", inboxId: null, bounce: { recipients: ["x@example.test"], reason: "550" } });
    expect(bounced.message).toBeUndefined();
  });

  it("a received message's derived (version 8) event id becomes a time-ordered public id, the same every time", () => {
    const derived = "3f2a9c1e-77b0-8d4e-9a1b-0c2d3e4f5a6b";
    const e = renderMessageEvent(event({ type: "MessageReceived", data: { ...facts, sourceMessageId: null } }, derived), undefined);
    expect(PublicEventId.safeParse(e.eventId).success).toBe(true);
    expect(e.eventId).toBe(publicEventId(derived, at));
    expect(publicEventTime(e.eventId)).toBe(Date.parse(at));
    // Another derived id at the same moment is another public id.
    expect(publicEventId("3f2a9c1e-77b0-8d4e-9a1b-0c2d3e4f5a6c", at)).not.toBe(e.eventId);
    // A UUIDv7 stays as it is.
    expect(publicEventId(ids.event, at)).toBe(`evt_${ids.event}`);
  });

  it("domain.verified names the domain its records are for", () => {
    const records = [
      { type: "MX" as const, purpose: "mx" as const, name: "acme.example", value: "mx.agents.test", priority: 10, status: "verified" as const },
      { type: "TXT" as const, purpose: "dmarc" as const, name: "_dmarc.acme.example", value: "v=DMARC1", priority: null, status: "verified" as const },
    ];
    expect(domainNameOf(records)).toBe("acme.example");
    expect(domainNameOf(records.slice(1))).toBe("acme.example");
    const e = renderDomainVerified(
      { ...envelope, id: ids.event, schemaVersion: 1, type: "DomainChecked", data: { domainId: ids.attachment, status: "verified", records } },
      "acme.example",
    );
    expect(FeedEvent.parse(e)).toEqual(e);
    expect(e).toMatchObject({ eventType: "domain.verified", inboxId: null, domain: { domainId: ids.attachment, domain: "acme.example" } });
  });
});

describe("an entry too large for one NATS message", () => {
  const entry = (plain: string, html: string): FeedEvent => {
    const e = renderMessageEvent(event({ type: "MessageSent", data: facts }), undefined);
    return { ...e, message: { ...e.message!, plainBody: plain, htmlBody: html } };
  };

  it("goes whole when it fits", () => {
    const e = entry("p", "<p>h</p>");
    expect(fitEntry(e, 10_000)).toEqual({ json: JSON.stringify(e), dropped: "nothing" });
  });

  it("drops its HTML body first, then the plain one, flagged truncated; and is not sent at all when nothing helps", () => {
    // Quotes double in JSON: bodies within their byte cap may still not fit together.
    const e = entry("p".repeat(1000), '"'.repeat(1000));
    const noHtml = fitEntry(e, 2_500)!;
    expect(noHtml.dropped).toBe("html body");
    expect(JSON.parse(noHtml.json).message).toMatchObject({ htmlBody: null, plainBody: "p".repeat(1000), bodyTruncated: true });
    expect(Buffer.byteLength(noHtml.json)).toBeLessThanOrEqual(2_500);
    const none = fitEntry(e, 1_500)!;
    expect(none.dropped).toBe("bodies");
    expect(JSON.parse(none.json).message).toMatchObject({ htmlBody: null, plainBody: null, bodyTruncated: true });
    expect(fitEntry(e, 100)).toBeUndefined();
  });
});
