import { randomUUID } from "node:crypto";

/**
 * A failure report (RFC 3464) as an MX sends one about recipients it refused, quoting the
 * original's Message-ID when given.
 */
export function failureReport(o: { to: string; recipients: string[]; diagnostic?: string | Record<string, string>; original?: string }): string {
  const diagnosticOf = (r: string) => (typeof o.diagnostic === "object" ? o.diagnostic[r] : o.diagnostic) ?? "550 5.1.1 no such user";
  return [
    "From: Mail Delivery System <MAILER-DAEMON@partner.example>",
    `To: ${o.to}`,
    "Subject: Undelivered Mail Returned to Sender",
    `Message-ID: <${randomUUID()}@partner.example>`,
    "MIME-Version: 1.0",
    'Content-Type: multipart/report; report-type=delivery-status; boundary="dsn"',
    "",
    "--dsn",
    "Content-Type: text/plain",
    "",
    "Your message could not be delivered.",
    "--dsn",
    "Content-Type: message/delivery-status",
    "",
    "Reporting-MTA: dns; mx.partner.example",
    ...o.recipients.flatMap((recipient) => [
      "",
      `Final-Recipient: rfc822; ${recipient}`,
      "Action: failed",
      "Status: 5.1.1",
      `Diagnostic-Code: smtp; ${diagnosticOf(recipient)}`,
    ]),
    "",
    ...(o.original ? ["--dsn", "Content-Type: text/rfc822-headers", "", `Message-ID: ${o.original}`, ""] : []),
    "--dsn--",
    "",
  ].join("\r\n");
}

/** A failure report about one refused recipient. */
export const dsn = (to: string, recipient: string) => failureReport({ to, recipients: [recipient] });
