import { keptReferences } from "../mime/references.ts";
import type { MessageRow } from "../read/messages.ts";

/** Everyone a message was between: who sent it, where answers go, and whom it was sent to. */
export const conversationOf = (m: MessageRow): string[] => [m.from_address, ...(m.reply_to ? [m.reply_to] : []), ...m.to_addresses, ...m.cc_addresses];

/**
 * A reply's References (RFC 5322 3.6.4): the parent's References, or lacking them its
 * In-Reply-To (one id), then the parent's Message-ID. A chain too long keeps its first id
 * (the thread's start, which clients thread by) and the latest ones.
 */
export function referencesOf(parent: Pick<MessageRow, "references" | "in_reply_to" | "message_id_header">): string[] {
  const before = parent.references.length ? parent.references : parent.in_reply_to && !/\s/.test(parent.in_reply_to.trim()) ? [parent.in_reply_to.trim()] : [];
  return keptReferences([...before, parent.message_id_header]);
}
