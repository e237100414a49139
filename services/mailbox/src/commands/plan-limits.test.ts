import { describe, expect, it } from "vitest";
import { AppError } from "@mam/contracts/errors.ts";
import { monthKey, overLimit, usageAdded } from "./plan-limits.ts";

describe("plan limits", () => {
  it("counts what a command adds: a message is one email whatever its recipients", () => {
    expect(
      usageAdded([{ type: "InboxCreated" }, { type: "AddressAdded" }, { type: "MessageSent" }, { type: "DraftDeleted" }, { type: "DomainAdded" }]),
    ).toEqual({
      inboxes: 1,
      domains: 1,
      emailsPerMonth: 1,
    });
    expect(usageAdded([{ type: "MessageReceived" }, { type: "InboxDeleted" }])).toEqual({ inboxes: 0, domains: 0, emailsPerMonth: 0 });
  });

  it("refuses only beyond the maximum, naming usage before the command", () => {
    expect(overLimit("inboxes", 3, 1, 3)).toBeNull();
    expect(overLimit("inboxes", 99, 1, null)).toBeNull();
    expect(overLimit("inboxes", 4, 0, 3)).toBeNull();
    const e = overLimit("emailsPerMonth", 3, 1, 2)!;
    expect(e).toBeInstanceOf(AppError);
    expect(e.toBody()).toMatchObject({ code: "PLAN_LIMIT_REACHED", limit: "emailsPerMonth", usage: 2, max: 2 });
  });

  it("months are UTC", () => {
    expect(monthKey(new Date("2026-12-31T23:59:59.999Z"))).toBe("2026-12-01");
    expect(monthKey(new Date("2027-01-01T00:00:00Z"))).toBe("2027-01-01");
  });
});
