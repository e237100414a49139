import { describe, expect, it } from "vitest";
import { BufferBudget } from "./buffer-budget.ts";

describe("BufferBudget", () => {
  it("reservations share the cap; one that cannot grow takes nothing; release gives back all, once", () => {
    const budget = new BufferBudget(100);
    const a = budget.reservation();
    const b = budget.reservation();
    expect(a.grow(60)).toBe(true);
    expect(b.grow(50)).toBe(false);
    expect(b.grow(40)).toBe(true);
    expect(budget.inUse).toBe(100);
    a.release();
    a.release();
    expect(budget.inUse).toBe(40);
    expect(b.grow(60)).toBe(true);
    b.release();
    expect(budget.inUse).toBe(0);
  });
});
