import type { KeyObject } from "node:crypto";
import nodemailer from "nodemailer";
import type DKIM from "nodemailer/lib/dkim";
import { encode as qpEncode, wrap as qpWrap } from "nodemailer/lib/qp";

/** Of the original message, its header is quoted back (RFC 3462's text/rfc822-headers), up to this much. */
export const MAX_QUOTED_HEADER_BYTES = 64 * 1024;

export interface FailedRecipient {
  address: string;
  /** An enhanced status code (RFC 3463), e.g. 5.1.1. */
  status: string;
  /** Why, in words: what the report's Diagnostic-Code says. */
  diagnostic: string;
}

export interface FailureNotice {
  /** The platform's mail domain: the notice comes from MAILER-DAEMON there, and its Message-ID is of it. */
  mailDomain: string;
  /** The host name the platform's SMTP server goes by (Reporting-MTA). */
  reportingMta: string;
  /** The original's reverse path: the notice goes there. */
  to: string;
  noticeId: string;
  /** The id the platform's SMTP server gave the original (its logs name it too). */
  queueId: string;
  arrivedAt: Date;
  date: Date;
  recipients: FailedRecipient[];
  /** The original message as received: its header is quoted. */
  original: Buffer;
  dkim?: { domainName: string; keySelector: string; privateKey: KeyObject };
}

const rfc5322Date = (d: Date) => d.toUTCString().replace(/GMT$/, "+0000");

/**
 * The original's header, without its body, its lines ended with CRLF whatever ended them in
 * the original (smtp-server passes bare LF and CR on as they came); at most the bound, in
 * whole lines. The header ends at the first empty line, however that line ends.
 */
export function headerOf(raw: Buffer): Buffer {
  const window = raw.subarray(0, MAX_QUOTED_HEADER_BYTES);
  const pieces = window.toString("latin1").split(/\r\n|\n|\r/);
  // The window's last piece is a whole line only where the message ends.
  if (raw.length > window.length) pieces.pop();
  const lines: string[] = [];
  let size = 0;
  for (const line of pieces) {
    if (line === "" || size + line.length + 2 > MAX_QUOTED_HEADER_BYTES) break;
    lines.push(line);
    size += line.length + 2;
  }
  return Buffer.from(lines.map((l) => `${l}\r\n`).join(""), "latin1");
}

/** Lines (CRLF-ended, see headerOf) that need no transfer encoding: 7-bit, no NUL, at most 998 octets each. */
function sevenBit(b: Buffer): boolean {
  let line = 0;
  for (const c of b) {
    if (c === 0 || c > 0x7f) return false;
    if (c === 0x0d || c === 0x0a) line = 0;
    else if (++line > 998) return false;
  }
  return true;
}

/**
 * A delivery status notification (RFC 3464) saying the message failed for these recipients:
 * a multipart/report with words for people, the machine-readable status of each recipient,
 * and the original's header. It comes from the null reverse path's mailbox, MAILER-DAEMON,
 * so that no notice is ever sent about a notice. DKIM-signed with the platform's key when given.
 */
export async function failureNotice(n: FailureNotice): Promise<Buffer> {
  const boundary = `=_notice_${n.noticeId.replace(/-/g, "")}`;
  const quoted = headerOf(n.original);
  const plain = sevenBit(quoted);
  const lines = [
    `From: Mail Delivery System <MAILER-DAEMON@${n.mailDomain}>`,
    `To: <${n.to}>`,
    "Subject: Undelivered Mail Returned to Sender",
    `Date: ${rfc5322Date(n.date)}`,
    `Message-ID: <${n.noticeId}@${n.mailDomain}>`,
    "Auto-Submitted: auto-replied",
    "MIME-Version: 1.0",
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    "",
    "This is a delivery status notification (RFC 3464).",
    "",
    `--${boundary}`,
    "Content-Type: text/plain; charset=us-ascii",
    "Content-Transfer-Encoding: 7bit",
    "",
    `This is the mail system at ${n.reportingMta}.`,
    "",
    `Your message (queue id ${n.queueId}) was accepted, but could not be delivered to`,
    "the recipients below. It was not kept for them.",
    "",
    ...n.recipients.map((r) => `<${r.address}>: ${r.diagnostic}`),
    "",
    `--${boundary}`,
    "Content-Type: message/delivery-status",
    "",
    `Reporting-MTA: dns; ${n.reportingMta}`,
    `X-Queue-ID: ${n.queueId}`,
    `Arrival-Date: ${rfc5322Date(n.arrivedAt)}`,
    ...n.recipients.flatMap((r) => [
      "",
      `Final-Recipient: rfc822; ${r.address}`,
      "Action: failed",
      `Status: ${r.status}`,
      `Diagnostic-Code: X-Mam; ${r.diagnostic}`,
    ]),
    "",
    `--${boundary}`,
    "Content-Type: text/rfc822-headers",
    // An original with 8-bit or overlong header lines is quoted in quoted-printable, so every
    // part stays 7-bit (only an SMTPUTF8 sender's address, in To, is UTF-8).
    `Content-Transfer-Encoding: ${plain ? "7bit" : "quoted-printable"}`,
    "",
    (plain ? quoted.toString("latin1") : qpWrap(qpEncode(quoted), 76)).replace(/\r\n$/, ""),
    "",
    `--${boundary}--`,
    "",
  ];
  // UTF-8 only where an address is (SMTPUTF8): the rest is ASCII.
  const raw = Buffer.from(lines.join("\r\n"), "utf8");
  if (!n.dkim) return raw;
  // A parsed key object signs too (see compose): nodemailer's types know only PEM.
  const signer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: "windows", dkim: n.dkim as DKIM.Options });
  const info = await signer.sendMail({ envelope: { from: "", to: [n.to] }, raw });
  return info.message as Buffer;
}
