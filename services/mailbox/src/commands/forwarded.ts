import type { MessageRow } from "../read/messages.ts";

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ENTITIES[c]!);

/** Tags whose content is no text, and tags that end a line. */
const SKIPPED = new Set(["script", "style", "head"]);
const LINE_ENDS = new Set(["p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"]);
const NAMED: Record<string, string> = { nbsp: " ", lt: "<", gt: ">", quot: '"', "#39": "'", amp: "&" };

/**
 * The text of an HTML body, for a forward's text part when the original had no text of its
 * own: scripts, styles and the head dropped, line breaks kept, tags removed, common entities
 * read. One pass, whatever the markup (an outside sender writes it): every search moves
 * forward, and one that finds nothing ends the scan.
 */
export function textOfHtml(html: string): string {
  let out = "";
  let at = 0;
  while (at < html.length) {
    const open = html.indexOf("<", at);
    if (open === -1) {
      out += html.slice(at);
      break;
    }
    out += html.slice(at, open);
    const close = html.indexOf(">", open + 1);
    if (close === -1) break;
    // Names read case-insensitively in place (lowering the whole text could move its indexes: "İ" lowers to two units).
    const name = /^\/?([a-z0-9]+)/i.exec(html.slice(open + 1, Math.min(close, open + 12)))?.[1]?.toLowerCase() ?? "";
    const ending = html[open + 1] === "/";
    at = close + 1;
    if (!ending && SKIPPED.has(name)) {
      const closing = new RegExp(`</${name}`, "gi");
      closing.lastIndex = at;
      const found = closing.exec(html);
      if (!found) break;
      const end = found.index;
      const gt = html.indexOf(">", end);
      if (gt === -1) break;
      at = gt + 1;
    } else if (name === "br" || (ending && LINE_ENDS.has(name))) out += "\n";
  }
  return out
    .replace(/&(nbsp|lt|gt|quot|#39|amp);/g, (_m, e: string) => NAMED[e]!)
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
