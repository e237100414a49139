import { describe, expect, it } from "vitest";
import { CoalescedReads } from "./coalesced-reads.ts";

/** A store whose reads are held until released, recording the keys of each and what the store held when it began. */
function store(maxKeys?: number) {
  const values = new Map<string, number>();
  const reads: { keys: string[]; release: () => void; fail: (err: Error) => void }[] = [];
  const reader = new CoalescedReads<string, number | null>({
    idOf: (k) => k,
    maxKeys,
    read: (keys) => {
      const snapshot = new Map(keys.map((k) => [k, values.get(k) ?? null]));
      return new Promise((resolve, reject) => reads.push({ keys: [...keys].sort(), release: () => resolve(snapshot), fail: reject }));
    },
  });
  return { values, reads, reader };
}

const turn = () => new Promise((r) => setImmediate(r));

describe("CoalescedReads", () => {
  it("a key asked for while nothing is read is read at once; those asked for during a read go together in the next", async () => {
    const { values, reads, reader } = store();
    values.set("a", 1);
    const a = reader.get("a");
    await turn();
    expect(reads.map((r) => r.keys)).toEqual([["a"]]);
    const b = reader.get("b");
    const c = reader.get("c");
    const c2 = reader.get("c");
    await turn();
    // Nothing more is read while the first read is out.
    expect(reads).toHaveLength(1);
    reads[0]!.release();
    expect(await a).toBe(1);
    await turn();
    expect(reads.map((r) => r.keys)).toEqual([["a"], ["b", "c"]]);
    reads[1]!.release();
    expect(await Promise.all([b, c, c2])).toEqual([null, null, null]);
  });

  it("answers from a read begun after the call: a key asked for again during its own read is read again", async () => {
    const { values, reads, reader } = store();
    values.set("a", 1);
    const first = reader.get("a");
    await turn();
    // Committed after the first read began: a caller asking now must see it.
    values.set("a", 2);
    const second = reader.get("a");
    reads[0]!.release();
    expect(await first).toBe(1);
    await turn();
    reads[1]!.release();
    expect(await second).toBe(2);
  });

  it("keys asked for in one turn go in one statement", async () => {
    const { reads, reader } = store();
    const all = Promise.all(["a", "b", "c"].map((k) => reader.get(k)));
    await turn();
    expect(reads.map((r) => r.keys)).toEqual([["a", "b", "c"]]);
    reads[0]!.release();
    expect(await all).toEqual([null, null, null]);
  });

  it("a failed read fails its own callers only; the keys behind it are read next", async () => {
    const { values, reads, reader } = store();
    values.set("b", 5);
    const a = reader.get("a");
    await turn();
    const b = reader.get("b");
    reads[0]!.fail(new Error("connection lost"));
    await expect(a).rejects.toThrow("connection lost");
    await turn();
    reads[1]!.release();
    expect(await b).toBe(5);
  });

  it("reads at most maxKeys keys at a time", async () => {
    const { reads, reader } = store(2);
    const first = reader.get("x");
    await turn();
    const rest = ["a", "b", "c"].map((k) => reader.get(k));
    reads[0]!.release();
    await first;
    await turn();
    reads[1]!.release();
    await turn();
    reads[2]!.release();
    await Promise.all(rest);
    expect(reads.map((r) => r.keys)).toEqual([["x"], ["a", "b"], ["c"]]);
  });
});
