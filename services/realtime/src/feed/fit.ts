import type { FeedEvent } from "@mam/contracts/realtime-feed.ts";

/** What had to go for an entry to fit one NATS message. */
export type Dropped = "nothing" | "html body" | "bodies";

/**
 * The entry as JSON within `maxBytes`, or undefined when even without its bodies it is too
 * large. Each body is already cut (FEED_BODY_MAX_BYTES), but JSON escaping can make the two
 * together pass NATS's payload limit: the HTML body goes first, then the plain one, flagged
 * `bodyTruncated` (the message stays readable whole through the API).
 */
export function fitEntry(entry: FeedEvent, maxBytes: number): { json: string; dropped: Dropped } | undefined {
  const json = JSON.stringify(entry);
  if (Buffer.byteLength(json) <= maxBytes || !entry.message) return Buffer.byteLength(json) <= maxBytes ? { json, dropped: "nothing" } : undefined;
  const withoutHtml = JSON.stringify({ ...entry, message: { ...entry.message, htmlBody: null, bodyTruncated: true } });
  if (Buffer.byteLength(withoutHtml) <= maxBytes) return { json: withoutHtml, dropped: "html body" };
  const withoutBodies = JSON.stringify({ ...entry, message: { ...entry.message, htmlBody: null, plainBody: null, bodyTruncated: true } });
  if (Buffer.byteLength(withoutBodies) <= maxBytes) return { json: withoutBodies, dropped: "bodies" };
  return undefined;
}
