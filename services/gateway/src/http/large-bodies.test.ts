import { describe, expect, it } from "vitest";
import { LargeBodies } from "./large-bodies.ts";

describe("LargeBodies", () => {
  it("caps in flight per key and in all, and frees on release", () => {
    const l = new LargeBodies(3, 2);
    expect([l.tryAcquire("a"), l.tryAcquire("a"), l.tryAcquire("a")]).toEqual([true, true, false]);
    expect(l.tryAcquire("b")).toBe(true);
    expect(l.tryAcquire("c")).toBe(false); // three in all
    l.release("a");
    expect(l.tryAcquire("c")).toBe(true);
    l.release("a");
    l.release("b");
    l.release("c");
    expect(l.inFlight).toBe(0);
    expect([l.tryAcquire("a"), l.tryAcquire("a")]).toEqual([true, true]);
  });
});
