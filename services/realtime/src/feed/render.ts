import type { DnsRecord, MailboxEnvelope } from "@mam/contracts/mailbox-events.ts";
import type { MessageFacts } from "@mam/contracts/message-events.ts";
import { publicEventId, type FeedEvent, type FeedMessage, type FeedThread, type PublicEventType } from "@mam/contracts/realtime-feed.ts";

/** The mailbox events the feed renders; every other one is acknowledged unread. */
export const RENDERED_TYPES = ["MessageReceived", "MessageSent", "MessageDelivered", "MessageBounced", "DomainChecked", "DomainRemoved"] as const;
export type RenderedType = (typeof RENDERED_TYPES)[number];
const RENDERED: ReadonlySet<string> = new Set(RENDERED_TYPES);
export const isRendered = (type: string): type is RenderedType => RENDERED.has(type);

export type Rendered = Extract<MailboxEnvelope, { type: RenderedType }>;
export type MessageEvent = Extract<Rendered, { type: "MessageReceived" | "MessageSent" | "MessageDelivered" | "MessageBounced" }>;
export type DomainEvent = Extract<Rendered, { type: "DomainChecked" | "DomainRemoved" }>;

export const isMessageEvent = (e: Rendered): e is MessageEvent =>
  e.type === "MessageReceived" || e.type === "MessageSent" || e.type === "MessageDelivered" || e.type === "MessageBounced";

/** The message as the mailbox renders it for the feed, with its thread. */
export interface Shown {
  message: FeedMessage;
  thread: FeedThread;
}

/** A rendered event's scope, which every mailbox event of a workspace carries. */
export interface Scoped {
  tenantId: string;
  workspaceId: string;
}
export const isScoped = (e: { tenantId: string | null; workspaceId: string | null }): e is typeof e & Scoped => !!e.tenantId && !!e.workspaceId;

const PUBLIC_TYPE: Record<MessageEvent["type"], PublicEventType> = {
  MessageReceived: "message.received",
  MessageSent: "message.sent",
  MessageDelivered: "message.delivered",
  MessageBounced: "message.bounced",
};

const base = (e: Rendered & Scoped, eventType: PublicEventType, inboxId: string | null) => ({
  eventId: publicEventId(e.id, e.occurredAt),
  eventType,
  tenantId: e.tenantId,
  workspaceId: e.workspaceId,
  inboxId,
  occurredAt: e.occurredAt,
});

/** `"Name" <address>`, or the address alone: as the mailbox's API writes a sender. */
const formatAddress = (address: string, name: string | null) => (name ? `"${name.replace(/["\\]/g, "")}" <${address}>` : address);

/**
 * What the event itself says of its message, for a message the mailbox could not show:
 * everything but the bodies (which events never carry).
 */
export function shownFromFacts(facts: MessageFacts, direction: "inbound" | "outbound", at: string): Shown {
  return {
    message: {
      messageId: facts.messageId,
      inboxId: facts.inboxId,
      threadId: facts.threadId,
      direction,
      from: formatAddress(facts.from.address, facts.from.name),
      fromAddress: facts.from.address,
      to: facts.to,
      cc: facts.cc,
      subject: facts.subject,
      preview: facts.preview,
      plainBody: null,
      htmlBody: null,
      bodyTruncated: false,
      messageIdHeader: facts.messageIdHeader,
      inReplyTo: facts.inReplyTo,
      attachments: facts.attachments.map((a) => ({ id: a.id, filename: a.filename, contentType: a.contentType, sizeBytes: a.sizeBytes })),
      timestamp: new Date(at).toISOString(),
    },
    thread: { threadId: facts.threadId, subject: facts.subject },
  };
}

/**
 * A message event as the feed shows it. `shown` is the mailbox's rendering of its message;
 * without it, a received or sent message is rendered from the event's facts (no bodies),
 * and a delivery or bounce without its message.
 */
export function renderMessageEvent(e: MessageEvent & Scoped, shown: Shown | undefined): FeedEvent {
  switch (e.type) {
    case "MessageReceived":
    case "MessageSent": {
      const s = shown ?? shownFromFacts(e.data, e.type === "MessageReceived" ? "inbound" : "outbound", e.occurredAt);
      return { ...base(e, PUBLIC_TYPE[e.type], s.message.inboxId), message: s.message, thread: s.thread };
    }
    case "MessageDelivered":
      return {
        ...base(e, PUBLIC_TYPE[e.type], shown?.message.inboxId ?? null),
        ...(shown && { message: shown.message, thread: shown.thread }),
        delivery: { recipients: e.data.recipients, via: e.data.via },
      };
    case "MessageBounced":
      return {
        ...base(e, PUBLIC_TYPE[e.type], shown?.message.inboxId ?? null),
        ...(shown && { message: shown.message, thread: shown.thread }),
        bounce: { recipients: e.data.recipients, reason: e.data.reason },
      };
    default: {
      const never: never = e;
      throw new Error(`not a message event: ${(never as MessageEvent).type}`);
    }
  }
}

/** domain.verified, for the check that made a domain verified. */
export function renderDomainVerified(e: Extract<DomainEvent, { type: "DomainChecked" }> & Scoped, domain: string): FeedEvent {
  return { ...base(e, "domain.verified", null), domain: { domainId: e.data.domainId, domain } };
}

/** A domain's name, as its own records carry it (the MX and SPF records are the domain's own name). */
export function domainNameOf(records: DnsRecord[]): string | undefined {
  const own = records.find((r) => r.purpose === "mx") ?? records.find((r) => r.purpose === "spf");
  if (own) return own.name;
  const dmarc = records.find((r) => r.purpose === "dmarc");
  return dmarc?.name.replace(/^_dmarc\./, "");
}

/** The message an event is about. */
export const messageIdOf = (e: MessageEvent) => e.data.messageId;
