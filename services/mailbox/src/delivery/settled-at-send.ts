import type { EventEnvelope } from "@mam/contracts/envelope.ts";
import type { MailboxEnvelope } from "@mam/contracts/mailbox-events.ts";

/**
 * The sent messages of one commit that left the delivery worker nothing to do: every
 * recipient (to, cc and bcc, each once, in lower case, as the worker counts them) has a
 * delivery recorded in the same commit. A send files its copies for inboxes of its own
 * workspace in its own transaction (local-copies.ts); when those were all its recipients, the
 * worker in this process acknowledges the MessageSent without reading the message back. Any
 * other process, or this one after a restart, reads it and finds every recipient settled.
 */
export function settledAtSend(committed: EventEnvelope[]): string[] {
  const events = committed as MailboxEnvelope[];
  const delivered = new Map<string, Set<string>>();
  for (const e of events) {
    if (e.type !== "MessageDelivered") continue;
    const seen = delivered.get(e.data.messageId) ?? new Set<string>();
    for (const r of e.data.recipients) seen.add(r.toLowerCase());
    delivered.set(e.data.messageId, seen);
  }
  if (!delivered.size) return [];
  return events.flatMap((e) => {
    if (e.type !== "MessageSent") return [];
    const done = delivered.get(e.data.messageId);
    const recipients = [...e.data.to, ...e.data.cc, ...e.data.bcc];
    return done && recipients.every((r) => done.has(r.toLowerCase())) ? [e.data.messageId] : [];
  });
}
