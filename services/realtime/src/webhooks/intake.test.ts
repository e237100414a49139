import { describe, expect, it } from "vitest";
import { insertChunks } from "./intake.ts";

const rows = (...sizes: number[]) => sizes.map((n, i) => ({ i, body: "x".repeat(n) }));
const shape = (chunks: { i: number }[][]) => chunks.map((c) => c.map((r) => r.i));

describe("queue inserts", () => {
  it("splits rows by count and by the bytes of their bodies, a single row whatever its size", () => {
    expect(shape([...insertChunks(rows(1, 1, 1, 1, 1), 2, 100)])).toEqual([[0, 1], [2, 3], [4]]);
    expect(shape([...insertChunks(rows(40, 40, 40, 500, 10), 100, 100)])).toEqual([[0, 1], [2], [3], [4]]);
    expect(shape([...insertChunks([], 2, 100)])).toEqual([]);
  });
});
