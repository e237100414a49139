import { simpleParser, type AddressObject } from "mailparser";
import { keptReferences } from "./references.ts";

export interface ParsedMail {
  messageIdHeader: string | null;
  from: { address: string; name: string | null };
  to: string[];
  cc: string[];
  replyTo: string | null;
  subject: string;
  text?: string;
  html?: string;
  inReplyTo: string | null;
  references: string[];
  attachments: { filename: string; contentType: string; content: Buffer }[];
}

const PARSE_BUDGET_MS = 5_000;

const addresses = (a: AddressObject | AddressObject[] | undefined) =>
  (Array.isArray(a) ? a : a ? [a] : []).flatMap((o) => o.value.map((v) => (v.address ?? "").toLowerCase()).filter(Boolean));

/** Only the header block, read without a MIME parser: what a hostile message cannot break. */
function headerOf(raw: Buffer, name: string): string | null {
  const end = raw.indexOf("\r\n\r\n");
  const head = raw
    .subarray(0, end === -1 ? Math.min(raw.length, 65_536) : end)
    .toString("latin1")
    .replace(/\r\n[ \t]+/g, " ");
  return new RegExp(`^${name}:[ \\t]*(.*)$`, "im").exec(head)?.[1]?.trim().slice(0, 998) ?? null;
}

/**
 * Parses with mailparser under a time budget, without link or image rewriting and without
 * the HTML rendering of plain text (the API does not return it). What
 * cannot be parsed is still kept: headers read by hand, no bodies; the raw stays available.
 */
export async function parseMail(raw: Buffer, envelopeFrom: string | null): Promise<ParsedMail> {
  return tidy(await parseLeniently(raw, envelopeFrom));
}

/** At most this many addresses of To and of Cc are kept: they are informational, and the event carrying them stays small. */
const MAX_LISTED = 200;

/**
 * What is indexed of a message must fit its event (one NATS message) and its row: lists and
 * fields are bounded, NUL (which PostgreSQL text and JSON cannot hold) is dropped and lone
 * surrogates become U+FFFD. The raw message keeps everything.
 */
function tidy(p: ParsedMail): ParsedMail {
  // Cut, then made well-formed: a cut through a surrogate pair, or a lone surrogate from a
  // broken encoding, is a string PostgreSQL's JSON refuses.
  const clean = (s: string, max: number) => (s.includes("\u0000") ? s.replaceAll("\u0000", "") : s).slice(0, max).toWellFormed();
  const opt = <T extends string | null | undefined>(s: T, max: number): T => (typeof s === "string" ? (clean(s, max) as T) : s);
  const list = (xs: string[]) => xs.slice(0, MAX_LISTED).map((x) => clean(x, 320));
  return {
    ...p,
    messageIdHeader: opt(p.messageIdHeader, 998),
    from: { address: clean(p.from.address, 320), name: opt(p.from.name, 200) },
    to: list(p.to),
    cc: list(p.cc),
    replyTo: opt(p.replyTo, 320),
    subject: clean(p.subject, 998),
    text: opt(p.text, Number.MAX_SAFE_INTEGER),
    html: opt(p.html, Number.MAX_SAFE_INTEGER),
    inReplyTo: opt(p.inReplyTo, 998),
    references: p.references.map((r) => clean(r, 998)),
    attachments: p.attachments.map((a) => ({ ...a, filename: clean(a.filename, 255), contentType: clean(a.contentType, 255) })),
  };
}

async function parseLeniently(raw: Buffer, envelopeFrom: string | null): Promise<ParsedMail> {
  try {
    const p = await Promise.race([
      simpleParser(raw, { skipImageLinks: true, skipTextLinks: true, skipTextToHtml: true, skipHtmlToText: false, maxHtmlLengthToParse: 2_000_000 }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error("parse budget exceeded")), PARSE_BUDGET_MS).unref()),
    ]);
    const from = p.from?.value[0];
    const refs = p.references ? (Array.isArray(p.references) ? p.references : p.references.split(/\s+/)) : [];
    return {
      messageIdHeader: p.messageId ?? null,
      from: { address: (from?.address ?? envelopeFrom ?? "unknown@invalid").toLowerCase(), name: from?.name || null },
      to: addresses(p.to),
      cc: addresses(p.cc),
      replyTo: addresses(p.replyTo)[0] ?? null,
      subject: (p.subject ?? "").slice(0, 998),
      text: p.text,
      html: typeof p.html === "string" ? p.html : undefined,
      inReplyTo: p.inReplyTo ?? null,
      references: keptReferences(refs.filter(Boolean)),
      attachments: p.attachments
        .slice(0, 100)
        .map((a, i) => ({ filename: a.filename ?? `attachment-${i + 1}`, contentType: a.contentType || "application/octet-stream", content: a.content })),
    };
  } catch {
    const fromHeader = headerOf(raw, "from");
    const address = /<([^>]+)>/.exec(fromHeader ?? "")?.[1] ?? envelopeFrom ?? "unknown@invalid";
    return {
      messageIdHeader: headerOf(raw, "message-id"),
      from: { address: address.toLowerCase().slice(0, 254), name: null },
      to: [],
      cc: [],
      replyTo: null,
      subject: headerOf(raw, "subject") ?? "(unparseable message)",
      inReplyTo: headerOf(raw, "in-reply-to"),
      references: keptReferences((headerOf(raw, "references") ?? "").split(/\s+/).filter(Boolean)),
      attachments: [],
    };
  }
}
