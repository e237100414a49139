import { randomUUID } from "node:crypto";

/** A failure report (RFC 3464) about one refused recipient. */
export const dsn = (to: string, recipient: string) =>
  [
    "From: Mail Delivery System <MAILER-DAEMON@partner.example>",
    `To: ${to}`,
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
    "",
    `Final-Recipient: rfc822; ${recipient}`,
    "Action: failed",
    "Status: 5.1.1",
    "Diagnostic-Code: smtp; 550 5.1.1 no such user",
    "",
    "--dsn--",
    "",
  ].join("\r\n");
