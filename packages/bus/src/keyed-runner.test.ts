import { describe, expect, it } from "vitest";
import { KeyedRunner } from "./keyed-runner.ts";

const tick = () => new Promise((r) => setTimeout(r, 1));

describe("KeyedRunner", () => {
  it("keeps order within a key, runs keys in parallel, bounds concurrency and drains", async () => {
    const r = new KeyedRunner(2);
    const log: string[] = [];
    let running = 0;
    let peak = 0;
    const task = (name: string) => async () => {
      running++;
      peak = Math.max(peak, running);
      await tick();
      log.push(name);
      running--;
    };
    for (const n of ["a1", "b1", "a2", "c1", "a3"]) await r.schedule(n[0]!, task(n));
    await r.idle();
    expect(peak).toBeLessThanOrEqual(2);
    expect(log.filter((x) => x.startsWith("a"))).toEqual(["a1", "a2", "a3"]);
    expect(log).toHaveLength(5);
  });
  it("a failing task does not stop later tasks of its key", async () => {
    const r = new KeyedRunner(4);
    const done: number[] = [];
    await r.schedule("k", async () => {
      throw new Error("boom");
    });
    await r.schedule("k", async () => void done.push(2));
    await r.idle();
    expect(done).toEqual([2]);
  });
});
