import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import { drafted, type Owner } from "./drafted.ts";
import type { EventDraft } from "./execute.ts";
import type { MessagesState } from "./message-state.ts";

export { evolve, initial } from "./message-state.ts";

export type Outcome = Extract<MailboxEvent, { type: "MessageDelivered" | "MessageBounced" }>;

/** What became of a sent message: facts from outside, recorded, never refused. */
export type DeliveryRecord =
  /**
   * A delivery status notification (RFC 3464) came back from a null sender to the return
   * path of a message we sent: the return path's token named the message.
   */
  | { kind: "report"; owner: Owner; messageId: string; recipients: string[]; reason: string }
  /** A server accepted or refused some recipients of the message. */
  | { kind: "outcome"; owner: Owner; messageId: string; outcome: Outcome; eventId: string };

export function decide(c: DeliveryRecord, state: MessagesState): EventDraft[] {
  switch (c.kind) {
    case "report": {
      const m = state.messages.get(c.messageId);
      // A report about mail that was not sent (or is gone), or one bounced already: nothing to record.
      if (!m || m.direction !== "outbound" || m.status === "bounced") return [];
      const data = { messageId: c.messageId, recipients: c.recipients, reason: c.reason };
      return [drafted(c.owner, c.messageId, m.version + 1, { type: "MessageBounced", schemaVersion: 1, data })];
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
