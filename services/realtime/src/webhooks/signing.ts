import { createHmac, randomBytes } from "node:crypto";
import { WebhookHeaders } from "@mam/contracts/webhook-payload.ts";

/** A new webhook's signing secret: `whsec_` and 32 random bytes (base64url). */
export const newWebhookSecret = () => `whsec_${randomBytes(32).toString("base64url")}`;

const hmac = (secret: string, ...parts: (string | Buffer)[]) => {
  const h = createHmac("sha256", secret);
  for (const p of parts) h.update(p);
  return `v1=${h.digest("hex")}`;
};

export interface AttemptHeaders {
  eventId: string;
  eventType: string;
  /** This attempt's number, from 1. */
  attempt: number;
  /** When this attempt is made. */
  at: Date;
}

/**
 * The headers of one attempt: the body's signature alone (what receivers written for
 * myagentmail check), the attempt's time, and the signature of time and body together
 * (for receivers that refuse replays). The body is signed exactly as it is sent.
 */
export function signedHeaders(secret: string, rawBody: Buffer, a: AttemptHeaders): Record<string, string> {
  const ts = String(Math.floor(a.at.getTime() / 1000));
  return {
    [WebhookHeaders.signature]: hmac(secret, rawBody),
    [WebhookHeaders.timestamp]: ts,
    [WebhookHeaders.signatureTs]: hmac(secret, `${ts}.`, rawBody),
    [WebhookHeaders.eventId]: a.eventId,
    [WebhookHeaders.event]: a.eventType,
    [WebhookHeaders.attempt]: String(a.attempt),
  };
}
