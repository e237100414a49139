import { notFound } from "@mam/contracts/errors.ts";
import { drafted, type Owner } from "./drafted.ts";
import type { EventDraft } from "./execute.ts";
import { liveOf, type MessagesState } from "./message-state.ts";

export { evolve, initial } from "./message-state.ts";

export interface Flags {
  isRead?: boolean;
  isStarred?: boolean;
  isArchived?: boolean;
}

/** A change to a message of an inbox, by the inbox's user. */
export type MessageCommand =
  | { kind: "flag"; owner: Owner; inboxId: string; messageId: string; flags: Flags }
  | { kind: "delete"; owner: Owner; inboxId: string; messageId: string };

export function decide(c: MessageCommand, state: MessagesState): EventDraft[] {
  const m = liveOf(state, c.messageId, c.inboxId);
  if (!m) throw notFound("Message");
  switch (c.kind) {
    case "flag":
      return [drafted(c.owner, c.messageId, m.version + 1, { type: "MessageFlagged", schemaVersion: 1, data: { messageId: c.messageId, ...c.flags } })];
    case "delete":
      // Soft: gone from listings, kept in its thread's history and in the stream.
      return [drafted(c.owner, c.messageId, m.version + 1, { type: "MessageDeleted", schemaVersion: 1, data: { messageId: c.messageId } })];
    default: {
      const unreachable: never = c;
      throw new Error(`unknown message command ${(unreachable as MessageCommand).kind}`);
    }
  }
}
