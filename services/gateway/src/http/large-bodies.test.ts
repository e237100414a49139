import { describe, expect, it } from "vitest";
import { LargeBodies } from "./large-bodies.ts";

const of = (key: string, tenant: string | null = null) => ({ key, tenant });

describe("LargeBodies", () => {
  it("caps in flight per key and in all, and frees on release", () => {
    const l = new LargeBodies(3, 2);
    const [a, b, c] = [of("a"), of("b"), of("c")];
    expect([l.tryAcquire(a), l.tryAcquire(a), l.tryAcquire(a)]).toEqual([true, true, false]);
    expect(l.tryAcquire(b)).toBe(true);
    expect(l.tryAcquire(c)).toBe(false); // three in all
    l.release(a);
    expect(l.tryAcquire(c)).toBe(true);
    l.release(a);
    l.release(b);
    l.release(c);
    expect(l.inFlight).toBe(0);
    expect([l.tryAcquire(a), l.tryAcquire(a)]).toEqual([true, true]);
  });

  it("given a tenant at its cap, when another of its keys asks, then it is refused while other tenants still get room", () => {
    const l = new LargeBodies(8, 2, 4);
    const keysOfT = ["k1", "k2", "k3", "k4"].map((k) => of(k, "T"));
    const granted = keysOfT.flatMap((k) => [l.tryAcquire(k), l.tryAcquire(k)]);
    expect(granted.filter(Boolean)).toHaveLength(4); // not the 8 its four keys would hold by the per-key cap alone
    expect(l.tryAcquire(of("k5", "T"))).toBe(false);
    expect(l.tryAcquire(of("u1", "U"))).toBe(true);
    expect(l.tryAcquire(of("op"))).toBe(true); // the operator's keys have no tenant: key and total caps only
    expect(l.inFlight).toBe(6);
  });

  it("given a tenant at its cap, when one of its bodies ends, then the tenant has room again", () => {
    const l = new LargeBodies(8, 2, 2);
    const [k1, k2] = [of("k1", "T"), of("k2", "T")];
    expect([l.tryAcquire(k1), l.tryAcquire(k2), l.tryAcquire(k2)]).toEqual([true, true, false]);
    l.release(k1);
    expect(l.tryAcquire(k2)).toBe(true);
    expect(l.tryAcquire(k1)).toBe(false);
  });
});
