import { describe, expect, it } from "vitest";
import { withDeliveryRecords } from "./status.ts";

describe("an outgoing message's status as the API shows it", () => {
  const view = (status: "sent" | "delivered" | "bounced") => ({
    id: "m1",
    direction: "outbound" as const,
    status,
    toAddresses: ["local@agents.test", "far@example.org"],
    cc: [],
    bcc: [],
  });
  const at = "2026-12-03T10:00:00.000Z";
  const delivered = (recipient: string) => ({ recipient, outcome: "delivered" as const, at, reason: null });

  it("is sent, not delivered, while a recipient has no outcome yet (a copy filed at send time, the world's still to go)", () => {
    const v = withDeliveryRecords(view("delivered"), { outcomes: [delivered("local@agents.test")], deferred: [] });
    expect(v.status).toBe("sent");
    expect(v.deliveries.map((d) => d.status)).toEqual(["delivered", "pending"]);
  });

  it("is delivered once every recipient is; deferred while one waits for another try; bounced stays bounced", () => {
    const both = { outcomes: [delivered("local@agents.test"), delivered("far@example.org")], deferred: [] };
    expect(withDeliveryRecords(view("delivered"), both).status).toBe("delivered");
    const waiting = { outcomes: [delivered("local@agents.test")], deferred: [{ recipients: ["far@example.org"], reason: "451 try later" }] };
    expect(withDeliveryRecords(view("delivered"), waiting).status).toBe("deferred");
    const bounced = { outcomes: [{ recipient: "far@example.org", outcome: "bounced" as const, at, reason: "550 no" }], deferred: [] };
    expect(withDeliveryRecords(view("bounced"), bounced).status).toBe("bounced");
  });
});
