import { describe, expect, it } from "vitest";
import { cached } from "./metrics.ts";

/** A read the test answers when it chooses. */
function controlled() {
  const calls: { resolve: (v: number) => void; reject: (e: Error) => void }[] = [];
  const read = () => new Promise<number>((resolve, reject) => calls.push({ resolve, reject }));
  return { read, calls };
}

describe("cached", () => {
  it("while a read is pending, answers from it whatever its age: reads never pile up", async () => {
    const { read, calls } = controlled();
    // A TTL of 0: every answer is already too old, only the pending read may be shared.
    const get = cached(read, 0);
    const first = get();
    const second = get();
    const third = get();
    await Promise.resolve();
    expect(calls).toHaveLength(1);
    expect(second).toBe(first);
    expect(third).toBe(first);
    calls[0]!.resolve(7);
    expect(await first).toBe(7);
    // Settled and older than the TTL: the next call reads again.
    const next = get();
    await Promise.resolve();
    expect(calls).toHaveLength(2);
    calls[1]!.resolve(8);
    expect(await next).toBe(8);
  });

  it("a failed read is not kept: the next call reads again", async () => {
    const { read, calls } = controlled();
    const get = cached(read, 60_000);
    const failing = get();
    await Promise.resolve();
    calls[0]!.reject(new Error("database down"));
    await expect(failing).rejects.toThrow("database down");
    const retried = get();
    await Promise.resolve();
    expect(calls).toHaveLength(2);
    calls[1]!.resolve(3);
    expect(await retried).toBe(3);
    // Within the TTL, the good answer is reused.
    expect(await get()).toBe(3);
    expect(calls).toHaveLength(2);
  });
});
