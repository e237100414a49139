import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ReplayPacer } from "./replay-pacer.ts";

describe("ReplayPacer", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  /** Starts `n` replays of `tenant`, recording the order they begin in. */
  const startMany = (p: ReplayPacer, tenant: string, n: number, began: string[]) =>
    Array.from({ length: n }, (_, i) => p.run(tenant, async () => void began.push(`${tenant}${i}`)));

  it("starts a burst at once, then one every 1/perSecond", async () => {
    const p = new ReplayPacer(10, 3, () => Date.now());
    const began: string[] = [];
    const all = startMany(p, "a", 6, began);
    await vi.advanceTimersByTimeAsync(0);
    expect(began).toEqual(["a0", "a1", "a2"]);
    await vi.advanceTimersByTimeAsync(100);
    expect(began).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(200);
    expect(began).toHaveLength(6);
    await Promise.all(all);
  });

  it("serves the tenants waiting in turn: one tenant's hundreds do not hold up another's one", async () => {
    const p = new ReplayPacer(10, 1, () => Date.now());
    const began: string[] = [];
    const many = startMany(p, "a", 100, began);
    await vi.advanceTimersByTimeAsync(0);
    const one = startMany(p, "b", 1, began);
    // Within two starts of asking, not behind a's 99.
    await vi.advanceTimersByTimeAsync(200);
    expect(began).toContain("b0");
    expect(began.indexOf("b0")).toBeLessThanOrEqual(3);
    expect(p.queued).toBeGreaterThan(90);
    await vi.advanceTimersByTimeAsync(10_000);
    await Promise.all([...many, ...one]);
    expect(began).toHaveLength(101);
    // a's own still in their order.
    expect(began.filter((x) => x.startsWith("a"))).toEqual(Array.from({ length: 100 }, (_, i) => `a${i}`));
  });
});
