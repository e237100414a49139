import { AppError } from "@mam/contracts/errors.ts";
import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { MessageFacts } from "@mam/contracts/message-events.ts";
import * as drafts from "./draft-decision.ts";
import { drafted, type Owner } from "./drafted.ts";
import type { EventDraft } from "./execute.ts";

export interface SendResult {
  id: string;
  threadId: string;
  status: "sent";
  messageId: string;
}

/** One message from an inbox, composed and stored: what is left is to decide whether it goes. */
export interface SendCommand {
  owner: Owner;
  /** The MessageSent facts: ids, the Message-ID header and the stored bytes' hashes. */
  facts: MessageFacts;
  /** Derived from the message id: deciding this send again (after a failed commit) makes the same event. */
  eventId: string;
  /** To, Cc and Bcc, each once. */
  recipients: string[];
  /** Check that every recipient has written to this inbox before (the first-contact safeguard). */
  firstContactCheck: boolean;
  /** Addresses the check passes over: those of the conversation a reply continues (lower case). */
  inConversation?: string[];
  /**
   * `requestHash`: of the request as parsed (canonical JSON); `earlierHash`: of the body as
   * written, as earlier releases hash it (absent: the same as requestHash).
   */
  idempotency: { key: string; requestHash: string; earlierHash?: string } | null;
  /** The draft this send deletes, as it was read when the send was composed. */
  draft: { draftId: string; version: number } | null;
}

export interface IdempotencyRecord {
  /** Of the body as written: what earlier releases compare (request_hash). */
  requestHash: string;
  /** Of the request as parsed; null in records earlier releases made. */
  canonicalHash?: string | null;
  response: SendResult;
}

/**
 * What a send is decided against. `idempotency` is the inbox's record of the command's key
 * (a store table written by the send's answer, not folded from events).
 */
export interface SendState extends drafts.DraftsState {
  idempotency: IdempotencyRecord | null;
  /** `senderKey(inbox, address)` of each address that has written to an inbox. */
  knownSenders: ReadonlySet<string>;
}

export const senderKey = (inboxId: string, address: string) => `${inboxId} ${address}`;

export const initial = (): SendState => ({ ...drafts.initial(), idempotency: null, knownSenders: new Set() });

export function evolve(state: SendState, event: MailboxEvent): SendState {
  if (event.type === "MessageReceived") {
    const key = senderKey(event.data.inboxId, event.data.from.address);
    return state.knownSenders.has(key) ? state : { ...state, knownSenders: new Set(state.knownSenders).add(key) };
  }
  const next = drafts.evolve(state, event);
  return next === state ? state : { ...state, drafts: next.drafts };
}

/** The recipients the first-contact safeguard asks about: none when the sender vouched for them. */
export function firstContacts(c: Pick<SendCommand, "recipients" | "firstContactCheck" | "inConversation">): string[] {
  if (!c.firstContactCheck) return [];
  const known = new Set(c.inConversation ?? []);
  return c.recipients.filter((r) => !known.has(r));
}

function refuseFirstContact(c: SendCommand, state: SendState) {
  const unknown = firstContacts(c).filter((r) => !state.knownSenders.has(senderKey(c.facts.inboxId, r)));
  if (unknown.length) {
    throw new AppError("FORBIDDEN", `First contact: ${unknown.join(", ")} never wrote to this inbox. Pass "verified": true once you have checked the address.`);
  }
}

/** The draft sent, deleted in the same step; one sent or changed meanwhile is not sent (again, or stale). */
function draftSent(c: SendCommand, draft: NonNullable<SendCommand["draft"]>, state: SendState): EventDraft {
  const live = drafts.liveDraft(state, draft.draftId, c.facts.inboxId);
  if (live.version !== draft.version) throw new AppError("CONFLICT", "The draft changed while being sent; send it again");
  const data = { draftId: draft.draftId, sentMessageId: c.facts.messageId };
  return drafted(c.owner, draft.draftId, draft.version + 1, { type: "DraftDeleted", schemaVersion: 1, data });
}

export function decide(c: SendCommand, state: SendState): EventDraft[] {
  if (state.idempotency) {
    const seen = state.idempotency;
    const key = c.idempotency;
    // A record without the parsed hash may hold it as its only one (made while it was the one kept).
    const same =
      !!key &&
      ((!!seen.canonicalHash && seen.canonicalHash === key.requestHash) ||
        seen.requestHash === (key.earlierHash ?? key.requestHash) ||
        (!seen.canonicalHash && seen.requestHash === key.requestHash));
    if (!same) throw new AppError("CONFLICT", "This Idempotency-Key was used for a different request");
    // A retry of a send already made: its first answer, nothing sent again.
    return [];
  }
  if (c.firstContactCheck) refuseFirstContact(c, state);
  const sent = drafted(c.owner, c.facts.messageId, 1, { type: "MessageSent", schemaVersion: 1, data: c.facts }, c.eventId);
  return c.draft ? [sent, draftSent(c, c.draft, state)] : [sent];
}

/** The answer to the send: the first one when it is a retry. */
export function answerOf(c: SendCommand, state: SendState): SendResult {
  return state.idempotency?.response ?? { id: c.facts.messageId, threadId: c.facts.threadId, status: "sent", messageId: c.facts.messageIdHeader };
}

/** The record the answer stores for a send with a key made now (none for a retry or a send without a key). */
export function idempotencyRecordOf(c: SendCommand, state: SendState): IdempotencyRecord | null {
  if (!c.idempotency || state.idempotency) return null;
  const { requestHash, earlierHash } = c.idempotency;
  return { requestHash: earlierHash ?? requestHash, canonicalHash: requestHash, response: answerOf(c, state) };
}
