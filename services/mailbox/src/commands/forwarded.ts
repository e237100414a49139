import type { MessageRow } from "../read/messages.ts";

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ENTITIES[c]!);

/**
 * The text of an HTML body, for a forward's text part when the original had no text of its
 * own: scripts and styles dropped, line breaks kept, tags removed, common entities read.
 */
export function textOfHtml(html: string): string {
  return html
    .replace(/<(script|style|head)\b[\s\S]*?<\/\1\s*>/gi, "")
    .replace(/<br\s*\/?>|<\/(p|div|li|tr|h[1-6])\s*>/gi, "\n")
    .replace(/<[^>]*>/g, "")
    .replace(/&nbsp;/g, " ")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, "&")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

/**
 * A forward's bodies: what the sender wrote, then the original under a "Forwarded message"
 * header, in the text part and, when either side has HTML, in an HTML part too (the
 * original's own HTML, or its text); a text part taken from the original's HTML when it had
 * no text.
 */
export function forwardedBodies(
  original: MessageRow,
  blobs: Map<string, Buffer>,
  given: { plainBody?: string; htmlBody?: string },
): { text: string; html?: string } {
  const from = original.from_name ? `${original.from_name} <${original.from_address}>` : original.from_address;
  const header = [
    "---------- Forwarded message ---------",
    `From: ${from}`,
    `Date: ${new Date(original.created_at).toUTCString()}`,
    `Subject: ${original.subject}`,
    `To: ${original.to_addresses.join(", ")}`,
  ];
  const html = original.html_hash ? blobs.get(original.html_hash)?.toString("utf8") : undefined;
  const plain =
    (original.plain_hash ? blobs.get(original.plain_hash)?.toString("utf8") : undefined) ?? (html !== undefined ? textOfHtml(html) : original.preview);
  const quotedText = [...header, "", plain].join("\n");
  const text = given.plainBody !== undefined ? `${given.plainBody}\n\n${quotedText}` : quotedText;
  if (given.htmlBody === undefined && html === undefined) return { text };
  const intro = given.htmlBody ?? (given.plainBody !== undefined ? `<p>${escapeHtml(given.plainBody).replace(/\n/g, "<br>")}</p>` : "");
  const quotedHtml = `<div>${header.map(escapeHtml).join("<br>")}</div><br>${html ?? `<pre>${escapeHtml(plain)}</pre>`}`;
  return { text, html: `${intro}<br><br>${quotedHtml}` };
}
