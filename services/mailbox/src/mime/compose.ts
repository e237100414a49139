import type { KeyObject } from "node:crypto";
import nodemailer from "nodemailer";
import type DKIM from "nodemailer/lib/dkim";

export interface Composition {
  from: { address: string; name: string | null };
  to: string[];
  cc: string[];
  subject: string;
  text?: string;
  html?: string;
  replyTo?: string | null;
  attachments: { filename: string; contentType: string; content: Buffer }[];
  messageIdHeader: string;
  inReplyTo: string | null;
  references: string[];
  date: Date;
  /** Signs with this key when given: the bytes stored are the bytes sent. */
  dkim?: { domainName: string; keySelector: string; privateKey: string | KeyObject };
}

/**
 * Builds the RFC 5322 message (nodemailer's composer, CRLF line ends) and DKIM-signs it.
 * Bcc recipients are never written into the message; they only get an envelope copy.
 */
export async function compose(c: Composition): Promise<Buffer> {
  // A parsed key object signs too (nodemailer hands it to crypto's sign as it is); its types know only PEM.
  const dkim = c.dkim as DKIM.Options | undefined;
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: "windows", dkim });
  const info = await transport.sendMail({
    from: c.from.name ? { name: c.from.name, address: c.from.address } : c.from.address,
    to: c.to,
    cc: c.cc.length ? c.cc : undefined,
    subject: c.subject,
    text: c.text,
    html: c.html,
    replyTo: c.replyTo ?? undefined,
    attachments: c.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, content: a.content })),
    messageId: c.messageIdHeader,
    inReplyTo: c.inReplyTo ?? undefined,
    references: c.references.length ? c.references : undefined,
    date: c.date,
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  return info.message as Buffer;
}

/** A short plain-text preview for listings. */
export function previewOf(text: string | undefined, html: string | undefined): string {
  // Only the head of a long body is read: enough to fill the preview after whitespace folds.
  const source =
    text ??
    (html ?? "")
      .slice(0, 65_536)
      .replace(/<style[\s\S]*?<\/style>|<script[\s\S]*?<\/script>/gi, " ")
      .replace(/<[^>]+>/g, " ");
  let preview = "";
  for (let at = 0; at < source.length && preview.length <= 200; at += 512) preview = `${preview}${source.slice(at, at + 512)}`.replace(/\s+/g, " ").trimStart();
  return preview.trim().slice(0, 200);
}
