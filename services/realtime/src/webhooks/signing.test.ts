import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { WebhookHeaders } from "@mam/contracts/webhook-payload.ts";
import { newWebhookSecret, signedHeaders } from "./signing.ts";

describe("webhook signing", () => {
  const body = Buffer.from(JSON.stringify({ event: "message.received", subject: "héllo" }));
  const at = new Date("2026-12-01T10:00:00.750Z");
  const h = signedHeaders("whsec_test", body, { eventId: "evt_x", eventType: "message.received", attempt: 2, at });

  it("signs the raw body alone, and the attempt's unix time with the body", () => {
    expect(h[WebhookHeaders.signature]).toBe(`v1=${createHmac("sha256", "whsec_test").update(body).digest("hex")}`);
    expect(h[WebhookHeaders.timestamp]).toBe("1796119200");
    expect(h[WebhookHeaders.signatureTs]).toBe(
      `v1=${createHmac("sha256", "whsec_test")
        .update(`1796119200.${body.toString("utf8")}`)
        .digest("hex")}`,
    );
    expect([h[WebhookHeaders.eventId], h[WebhookHeaders.event], h[WebhookHeaders.attempt]]).toEqual(["evt_x", "message.received", "2"]);
  });

  it("gives another signature for another secret, another body or another time", () => {
    const same = { eventId: "evt_x", eventType: "message.received", attempt: 2, at };
    expect(signedHeaders("whsec_other", body, same)[WebhookHeaders.signature]).not.toBe(h[WebhookHeaders.signature]);
    expect(signedHeaders("whsec_test", Buffer.from(`${body} `), same)[WebhookHeaders.signature]).not.toBe(h[WebhookHeaders.signature]);
    const later = signedHeaders("whsec_test", body, { ...same, at: new Date(at.getTime() + 1000) });
    expect([later[WebhookHeaders.signature], later[WebhookHeaders.signatureTs] === h[WebhookHeaders.signatureTs]]).toEqual([
      h[WebhookHeaders.signature],
      false,
    ]);
  });

  it("makes secrets of whsec_ and 32 random bytes", () => {
    const a = newWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a.slice(6), "base64url")).toHaveLength(32);
    expect(newWebhookSecret()).not.toBe(a);
  });
});
