import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { Authentication, MessageFacts } from "@mam/contracts/message-events.ts";
import { derivedId } from "../delivery/ids.ts";
import { drafted, type Owner } from "./drafted.ts";
import type { EventDraft } from "./execute.ts";
import { evolve as evolveMessages, initial as initialMessages, type MessagesState } from "./message-state.ts";

/**
 * What a filing is decided against: the messages the batch is about, and which of its inboxes
 * take mail. An inbox takes mail while it is live and its workspace open; smtp-ingress's
 * directory may still list one that ended (it hears of the end later), so this is checked
 * here, under the tenant's lock, against what the cascade committed.
 */
export interface FilingState extends MessagesState {
  /** Inboxes that take mail, with their workspace. */
  liveInboxes: ReadonlyMap<string, string>;
  /** Workspaces that ended (only folded histories need it: `load` reads live inboxes alone). */
  closedWorkspaces: ReadonlySet<string>;
}

export const initial = (): FilingState => ({ ...initialMessages(), liveInboxes: new Map(), closedWorkspaces: new Set() });

/** Folds events as the read model applies them: messages, and the inboxes that take mail. */
export function evolve(state: FilingState, e: MailboxEvent): FilingState {
  switch (e.type) {
    case "InboxCreated":
      if (state.closedWorkspaces.has(e.data.workspaceId)) return state;
      return { ...state, liveInboxes: new Map(state.liveInboxes).set(e.data.inboxId, e.data.workspaceId) };
    case "InboxDeleted": {
      const liveInboxes = new Map(state.liveInboxes);
      liveInboxes.delete(e.data.inboxId);
      return { ...state, liveInboxes };
    }
    case "WorkspaceClosed": {
      const ws = e.data.workspaceId;
      const liveInboxes = new Map([...state.liveInboxes].filter(([, w]) => w !== ws));
      return { ...state, liveInboxes, closedWorkspaces: new Set(state.closedWorkspaces).add(ws) };
    }
    default:
      return { ...state, ...evolveMessages(state, e) };
  }
}

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

/** Whether the filing's inbox takes mail: live, in the workspace the filing names, that workspace open. */
const takesMail = (state: FilingState, f: Filing) => state.liveInboxes.get(f.inboxId) === f.owner.workspaceId;

/**
 * The filings decided nothing because their inbox does not take mail (deleted, or its
 * workspace ended): the caller says so, as the mail was accepted already.
 */
export const unfileable = (c: FilingCommand, state: FilingState): Filing[] => c.filings.filter((f) => !takesMail(state, f));

/**
 * Files each message not stored already, in an inbox that takes mail; nothing for an inbox
 * that was deleted or whose workspace ended (see `unfileable`). A reply joins its parent's thread: In-Reply-To
 * first, then References from the nearest; the parent may be stored already or earlier in
 * this very batch. Of two messages with one header in an inbox, the first stored counts.
 */
export function decide(c: FilingCommand, state: FilingState): EventDraft[] {
  const filed = new Set(state.messages.keys());
  const threads = new Map<string, string>();
  for (const m of state.messages.values()) {
    const key = headerKey(m.inboxId, m.messageIdHeader);
    if (!threads.has(key)) threads.set(key, m.threadId);
  }
  const events: EventDraft[] = [];
  for (const f of c.filings) {
    if (filed.has(f.messageId) || !takesMail(state, f)) continue;
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
