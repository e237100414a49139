import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import { derivedId } from "../delivery/ids.ts";
import { drafted, type Owner } from "./drafted.ts";
import type { EventDraft } from "./execute.ts";
import { evolve as evolveMessages, initial as initialMessages, type MessagesState } from "./message-state.ts";

/**
 * What a delivery record is decided against: the message, and which of its recipients are
 * bounced already. Outcomes are per recipient (the read model's `delivery_outcomes`), the
 * message's status only sums them up.
 */
export interface DeliveryState extends MessagesState {
  /** By message, its recipients recorded bounced, in lower case. */
  bounced: ReadonlyMap<string, ReadonlySet<string>>;
}

export const initial = (): DeliveryState => ({ ...initialMessages(), bounced: new Map() });

/** Folds events as the read model applies them: a bounce marks its recipients, whatever they were. */
export function evolve(state: DeliveryState, e: MailboxEvent): DeliveryState {
  const next = { ...state, ...evolveMessages(state, e) };
  if (e.type !== "MessageBounced") return next;
  const recipients = new Set(state.bounced.get(e.data.messageId));
  for (const r of e.data.recipients) recipients.add(r.toLowerCase());
  return { ...next, bounced: new Map(state.bounced).set(e.data.messageId, recipients) };
}

export type Outcome = Extract<MailboxEvent, { type: "MessageDelivered" | "MessageBounced" }>;

/** What became of a sent message: facts from outside, recorded, never refused. */
export type DeliveryRecord =
  /**
   * A delivery status notification (RFC 3464) came back from a null sender to the return
   * path of a message we sent: the return path's token named the message, the report names
   * the recipients (those the message was sent to: the caller keeps only those).
   */
  | { kind: "report"; owner: Owner; messageId: string; recipients: string[]; reason: string }
  /** A server accepted or refused some recipients of the message. */
  | { kind: "outcome"; owner: Owner; messageId: string; outcome: Outcome; eventId: string };

/**
 * A report bounces the recipients it names that are not bounced already, whatever else they
 * were (delivered: a relay took the message, the final MX refused it). Each final MX sends
 * its own report, so a message sees several, each about its own recipients.
 */
export function decide(c: DeliveryRecord, state: DeliveryState): EventDraft[] {
  switch (c.kind) {
    case "report": {
      const m = state.messages.get(c.messageId);
      // A report about mail that was not sent (or is gone): nothing to record.
      if (m?.direction !== "outbound") return [];
      const bounced = state.bounced.get(c.messageId);
      // Recipients bounced already (by this very report delivered again, another report, or a
      // server's refusal) are not bounced twice: a redelivered report records nothing.
      const recipients = [...new Set(c.recipients.map((r) => r.toLowerCase()))].filter((r) => !bounced?.has(r)).sort();
      if (!recipients.length) return [];
      const data = { messageId: c.messageId, recipients, reason: c.reason };
      // Derived from what it records: the same bounce decided again is the same event.
      const eventId = derivedId("event", c.messageId, "MessageBounced", "report", ...recipients);
      return [drafted(c.owner, c.messageId, m.version + 1, { type: "MessageBounced", schemaVersion: 1, data }, eventId)];
    }
    case "outcome": {
      // The id is derived from the content: recorded again after a failure, it is the same event.
      const version = state.messages.get(c.messageId)?.version ?? 1;
      return [drafted(c.owner, c.messageId, version + 1, c.outcome, c.eventId)];
    }
    default: {
      const unreachable: never = c;
      throw new Error(`unknown delivery record ${(unreachable as DeliveryRecord).kind}`);
    }
  }
}
