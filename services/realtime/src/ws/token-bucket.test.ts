import { beforeEach, describe, expect, it } from "vitest";
import { TokenBucket } from "./token-bucket.ts";

/** The bucket's clock, `ms` after the start (an arbitrary origin, as performance.now's is). */
let clock = 0;
const at = (ms: number) => {
  clock = 1_234.5 + ms;
};
const bucket = (o: { burst: number; refill: number; everyMs: number }) => new TokenBucket({ ...o, now: () => clock });
/** How many tokens are taken before the first refusal (at most `max`, so a broken bucket still ends). */
const drain = (b: TokenBucket, max = 100) => {
  let n = 0;
  while (n < max && b.take()) n++;
  return n;
};

describe("TokenBucket", () => {
  beforeEach(() => at(0));

  it("starts full: `burst` at once, then none", () => {
    const b = bucket({ burst: 3, refill: 1, everyMs: 5_000 });
    expect(drain(b)).toBe(3);
    expect(b.take()).toBe(false);
  });

  it("refills `refill` every `everyMs`, in fractions, and a refused try keeps what had refilled", () => {
    const b = bucket({ burst: 3, refill: 1, everyMs: 5_000 });
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
    const b = bucket({ burst: 20, refill: 20, everyMs: 1_000 });
    expect(drain(b)).toBe(20);
    at(250);
    expect(drain(b)).toBe(5);
    at(1_250);
    expect(drain(b)).toBe(20);
  });

  it("saves up no more than `burst`, however long it waits", () => {
    const b = bucket({ burst: 3, refill: 1, everyMs: 5_000 });
    drain(b);
    at(3_600_000);
    expect(drain(b)).toBe(3);
    // Time spent full is not saved either: empty again, it waits a whole interval for one more.
    at(3_604_999);
    expect(b.take()).toBe(false);
    at(3_605_000);
    expect(b.take()).toBe(true);
  });

  it("a token given back can be taken again, never past `burst`", () => {
    const b = bucket({ burst: 2, refill: 1, everyMs: 5_000 });
    drain(b);
    b.giveBack();
    expect(drain(b)).toBe(1);
    b.giveBack();
    b.giveBack();
    b.giveBack();
    expect(drain(b)).toBe(2);
  });

  it("takes nothing back when its clock goes backwards", () => {
    const b = bucket({ burst: 3, refill: 1, everyMs: 5_000 });
    at(-60_000);
    expect(drain(b)).toBe(3);
  });
});
