import { describe, expect, it } from "vitest";
import { afterFailure, nextDelayMs, type RetryPolicy } from "./backoff.ts";

const policy: RetryPolicy = { baseMs: 10_000, maxDelayMs: 3_600_000, windowMs: 8 * 3_600_000 };
const lowest = () => 0;
const highest = () => 1;

describe("retry delays (decorrelated jitter)", () => {
  it("starts between the base and three times it, and grows up to three times the last delay", () => {
    expect([nextDelayMs(null, policy, lowest), nextDelayMs(null, policy, highest)]).toEqual([10_000, 30_000]);
    expect([nextDelayMs(30_000, policy, lowest), nextDelayMs(30_000, policy, highest)]).toEqual([10_000, 90_000]);
  });

  it("never passes the cap, however long it has grown, and never goes under the base", () => {
    expect(nextDelayMs(3_000_000, policy, highest)).toBe(3_600_000);
    for (let i = 0; i < 1000; i++) {
      const d = nextDelayMs(Math.random() * 10_000_000, policy);
      expect(d).toBeGreaterThanOrEqual(10_000);
      expect(d).toBeLessThanOrEqual(3_600_000);
    }
    expect(nextDelayMs(null, { baseMs: 500, maxDelayMs: 200, windowMs: 1000 }, highest)).toBe(200);
  });

  it("retries for the whole window after the first attempt: hours of an endpoint down take a few dozen attempts", () => {
    const first = new Date("2026-12-01T00:00:00Z");
    let now = first;
    let prev: number | null = null;
    let attempts = 1;
    for (;;) {
      const next = afterFailure({ firstAttemptAt: first, startedAt: now, now, prevDelayMs: prev }, policy, () => 0.5);
      if (next.kind === "give-up") break;
      expect(next.at.getTime()).toBeGreaterThan(now.getTime());
      [now, prev, attempts] = [next.at, next.delayMs, attempts + 1];
    }
    // The last try is made at the window's end, not before it.
    expect(now.getTime() - first.getTime()).toBe(policy.windowMs);
    expect(attempts).toBeGreaterThan(10);
    expect(attempts).toBeLessThan(40);
  });

  it("gives up once an attempt made at the window's end has failed, not before", () => {
    const first = new Date("2026-12-01T00:00:00Z");
    const end = first.getTime() + policy.windowMs;
    const at = (ms: number) => new Date(ms);
    expect(afterFailure({ firstAttemptAt: first, startedAt: at(end), now: at(end + 50), prevDelayMs: 1000 }, policy)).toEqual({ kind: "give-up" });
    const near = afterFailure({ firstAttemptAt: first, startedAt: at(end - 2000), now: at(end - 1000), prevDelayMs: null }, policy, highest);
    expect(near).toEqual({ kind: "retry", at: at(end), delayMs: 30_000 });
    // Started before the end, finished after it (a slow timeout): one more try, at once.
    const late = afterFailure({ firstAttemptAt: first, startedAt: at(end - 10), now: at(end + 9_000), prevDelayMs: null }, policy, highest);
    expect(late).toEqual({ kind: "retry", at: at(end + 9_000), delayMs: 30_000 });
  });
});
