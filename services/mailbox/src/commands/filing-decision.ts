import type { Authentication, MessageFacts } from "@mam/contracts/message-events.ts";
import { derivedId } from "../delivery/ids.ts";
import { drafted, type Owner } from "./drafted.ts";
import type { EventDraft } from "./execute.ts";
import type { MessagesState } from "./message-state.ts";

export { evolve, initial } from "./message-state.ts";

/** One inbound message for one inbox, with the ids it gets whatever the decision. */
export interface Filing {
  owner: Owner;
  inboxId: string;
  /** Derived from the delivery and the inbox: the same delivery arriving twice is the same message. */
  messageId: string;
  /** Derived too: filing it again (a retry after a failed commit) makes the same event. */
  eventId: string;
  /** The thread the message starts when it answers none this inbox holds. */
  newThreadId: string;
  facts: Omit<MessageFacts, "messageId" | "inboxId" | "threadId">;
  sourceMessageId: string | null;
  authentication: Authentication | null;
}

/** Filings of one tenant, decided together (group commit), in arrival order. */
export interface FilingCommand {
  filings: Filing[];
}

/** A filing with its derived ids: the same `dedupeParts` and inbox always make the same ones. */
export function filingOf(
  owner: Owner,
  inboxId: string,
  facts: Filing["facts"],
  source: { dedupeParts: string[]; sourceMessageId: string | null; authentication?: Authentication | null },
): Filing {
  const messageId = derivedId(...source.dedupeParts, inboxId);
  return {
    owner,
    inboxId,
    messageId,
    eventId: derivedId("event", messageId, "MessageReceived"),
    newThreadId: derivedId("thread", messageId),
    facts,
    sourceMessageId: source.sourceMessageId,
    authentication: source.authentication ?? null,
  };
}

const headerKey = (inboxId: string, header: string) => `${inboxId} ${header}`;

/** The Message-ID headers `load` must find the threads of: each filing's own parents. */
export const parentHeaders = (c: FilingCommand) => [
  ...new Set(c.filings.flatMap((f) => [f.facts.inReplyTo, ...f.facts.references].filter((h): h is string => !!h))),
];

/**
 * Files each message not stored already. A reply joins its parent's thread: In-Reply-To
 * first, then References from the nearest; the parent may be stored already or earlier in
 * this very batch. Of two messages with one header in an inbox, the first stored counts.
 */
export function decide(c: FilingCommand, state: MessagesState): EventDraft[] {
  const filed = new Set(state.messages.keys());
  const threads = new Map<string, string>();
  for (const m of state.messages.values()) {
    const key = headerKey(m.inboxId, m.messageIdHeader);
    if (!threads.has(key)) threads.set(key, m.threadId);
  }
  const events: EventDraft[] = [];
  for (const f of c.filings) {
    if (filed.has(f.messageId)) continue;
    filed.add(f.messageId);
    const { facts } = f;
    const parent = [facts.inReplyTo, ...[...facts.references].reverse()].map((h) => (h ? threads.get(headerKey(f.inboxId, h)) : undefined)).find(Boolean);
    const threadId = parent ?? f.newThreadId;
    const own = headerKey(f.inboxId, facts.messageIdHeader);
    if (!threads.has(own)) threads.set(own, threadId);
    const data = {
      ...facts,
      messageId: f.messageId,
      inboxId: f.inboxId,
      threadId,
      bcc: [],
      sourceMessageId: f.sourceMessageId,
      authentication: f.authentication,
    };
    events.push(drafted(f.owner, f.messageId, 1, { type: "MessageReceived", schemaVersion: 1, data }, f.eventId));
  }
  return events;
}
