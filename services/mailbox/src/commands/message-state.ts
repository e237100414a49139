import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";

/** What decisions about a stored message need of it. */
export interface KnownMessage {
  inboxId: string;
  threadId: string;
  direction: "inbound" | "outbound";
  messageIdHeader: string;
  status: "received" | "sent" | "delivered" | "bounced";
  deleted: boolean;
  /** The read model's `version`: one more with each event about the message. */
  version: number;
}

/**
 * The messages a decision is about, by id, in the order they were stored: of two with the
 * same Message-ID header in an inbox, the first is the one a reply threads under. `load`
 * reads the few rows a command needs into this shape; tests fold it from events.
 */
export interface MessagesState {
  messages: ReadonlyMap<string, KnownMessage>;
}

type MessageEvent = Extract<MailboxEvent, { type: `Message${string}` }>;
const isMessageEvent = (e: MailboxEvent): e is MessageEvent => e.type.startsWith("Message");

export const initial = (): MessagesState => ({ messages: new Map() });

function changed(state: MessagesState, id: string, change: (m: KnownMessage) => Partial<KnownMessage>): MessagesState {
  const m = state.messages.get(id);
  // An event about a message the state does not hold: the read model updates no row either.
  if (!m) return state;
  return { messages: new Map(state.messages).set(id, { ...m, ...change(m), version: m.version + 1 }) };
}

/** Folds events into the state as the read model (projections/messages.ts) applies them. */
export function evolve(state: MessagesState, event: MailboxEvent): MessagesState {
  if (!isMessageEvent(event)) return state;
  switch (event.type) {
    case "MessageSent":
    case "MessageReceived": {
      const f = event.data;
      // Stored once: the read model keeps the first insert of a message id.
      if (state.messages.has(f.messageId)) return state;
      const inbound = event.type === "MessageReceived";
      const m: KnownMessage = {
        inboxId: f.inboxId,
        threadId: f.threadId,
        direction: inbound ? "inbound" : "outbound",
        messageIdHeader: f.messageIdHeader,
        status: inbound ? "received" : "sent",
        deleted: false,
        version: 1,
      };
      return { messages: new Map(state.messages).set(f.messageId, m) };
    }
    case "MessageFlagged":
      return changed(state, event.data.messageId, () => ({}));
    case "MessageDeleted":
      return changed(state, event.data.messageId, () => ({ deleted: true }));
    case "MessageDelivered":
      // Delivered never overrides a bounce of some of the recipients.
      return changed(state, event.data.messageId, (m) => ({ status: m.status === "sent" ? "delivered" : m.status }));
    case "MessageBounced":
      return changed(state, event.data.messageId, () => ({ status: "bounced" }));
    default: {
      const unreachable: never = event;
      throw new Error(`unhandled message event ${(unreachable as MessageEvent).type}`);
    }
  }
}

/** The message if it is a live one of this inbox: one of another inbox is as missing as one that never was. */
export function liveOf(state: MessagesState, messageId: string, inboxId: string): KnownMessage | undefined {
  const m = state.messages.get(messageId);
  return m && m.inboxId === inboxId && !m.deleted ? m : undefined;
}
