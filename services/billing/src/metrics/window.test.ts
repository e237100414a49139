import { describe, expect, it } from "vitest";
import { AppError } from "@mam/contracts/errors.ts";
import { parseInstant, resolveWindow } from "./window.ts";

const now = new Date("2026-12-01T12:00:00.000Z");
const refused = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e instanceof AppError ? e.code : "other";
  }
  return "accepted";
};

describe("metrics window", () => {
  it("reads ISO-8601, epoch seconds and epoch milliseconds as the same instant", () => {
    const ms = Date.parse("2026-11-01T10:00:00.000Z");
    for (const raw of ["2026-11-01T10:00:00Z", "2026-11-01T11:00:00+01:00", String(ms / 1000), String(ms)]) {
      expect(parseInstant("from", raw).toISOString(), raw).toBe("2026-11-01T10:00:00.000Z");
    }
    expect(parseInstant("from", "2026-11-01").toISOString()).toBe("2026-11-01T00:00:00.000Z");
    // 11 digits are seconds (year 5138), 12 are milliseconds (1973).
    expect(parseInstant("to", "99999999999").getTime()).toBe(99_999_999_999_000);
    expect(parseInstant("to", "100000000000").getTime()).toBe(100_000_000_000);
  });

  it("defaults to the last 30 days", () => {
    expect(resolveWindow({}, now)).toEqual({ from: new Date("2026-11-01T12:00:00.000Z"), to: now });
    expect(resolveWindow({ to: "2026-06-30T00:00:00Z" }, now).from.toISOString()).toBe("2026-05-31T00:00:00.000Z");
  });

  it("refuses unreadable bounds, a reversed window and one over 400 days", () => {
    for (const q of [{ from: "yesterday" }, { to: "1e12" }, { to: "-5" }, { from: "2026-13-01" }, { to: "99999999999999999" }]) {
      expect(
        refused(() => resolveWindow(q, now)),
        JSON.stringify(q),
      ).toBe("VALIDATION_ERROR");
    }
    expect(refused(() => resolveWindow({ from: "2026-12-02T00:00:00Z", to: "2026-12-01T00:00:00Z" }, now))).toBe("VALIDATION_ERROR");
    expect(refused(() => resolveWindow({ from: "2025-01-01T00:00:00Z", to: "2026-02-05T00:00:01Z" }, now))).toBe("VALIDATION_ERROR");
    expect(refused(() => resolveWindow({ from: "2025-01-01T00:00:00Z", to: "2026-02-05T00:00:00Z" }, now))).toBe("accepted");
    // An empty window is a window.
    expect(refused(() => resolveWindow({ from: "1764590400", to: "1764590400" }, now))).toBe("accepted");
  });
});
