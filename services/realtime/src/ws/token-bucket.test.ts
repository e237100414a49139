import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TokenBucket } from "./token-bucket.ts";

const T0 = Date.UTC(2026, 0, 1);
/** The wall clock at `ms` after the start. */
const at = (ms: number) => vi.setSystemTime(T0 + ms);
/** How many tokens are taken before the first refusal (at most `max`, so a broken bucket still ends). */
const drain = (b: TokenBucket, max = 100) => {
  let n = 0;
  while (n < max && b.take()) n++;
  return n;
};

describe("TokenBucket", () => {
  // Only Date: the bucket reads Date.now(), and no timer of the test runner is touched.
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"] });
    at(0);
  });
  afterEach(() => vi.useRealTimers());

  it("starts full: `burst` at once, then none", () => {
    const b = new TokenBucket({ burst: 3, refill: 1, everyMs: 5_000 });
    expect(drain(b)).toBe(3);
    expect(b.take()).toBe(false);
  });

  it("refills `refill` every `everyMs`, in fractions, and a refused try keeps what had refilled", () => {
    const b = new TokenBucket({ burst: 3, refill: 1, everyMs: 5_000 });
    drain(b);
    at(4_999);
    expect(b.take()).toBe(false);
    at(5_000);
    expect(b.take()).toBe(true);
    expect(b.take()).toBe(false);
    // Half a token at 7.5 s (refused), the other half by 10 s.
    at(7_500);
    expect(b.take()).toBe(false);
    at(10_000);
    expect(b.take()).toBe(true);
    expect(b.take()).toBe(false);
  });

  it("refills `refill` tokens per interval, not one", () => {
    const b = new TokenBucket({ burst: 20, refill: 20, everyMs: 1_000 });
    expect(drain(b)).toBe(20);
    at(250);
    expect(drain(b)).toBe(5);
    at(1_250);
    expect(drain(b)).toBe(20);
  });

  it("saves up no more than `burst`, however long it waits", () => {
    const b = new TokenBucket({ burst: 3, refill: 1, everyMs: 5_000 });
    drain(b);
    at(3_600_000);
    expect(drain(b)).toBe(3);
    // Time spent full is not saved either: empty again, it waits a whole interval for one more.
    at(3_604_999);
    expect(b.take()).toBe(false);
    at(3_605_000);
    expect(b.take()).toBe(true);
  });
});
