import { describe, expect, it } from "vitest";
import { BatchReads } from "./batch-reads.ts";

/** A store of values by key, counting the reads made of it and the keys each read asked for. */
function store(values: Map<string, number>) {
  const reads: string[][] = [];
  const reader = new BatchReads<string, number | null>({
    idOf: (k) => k,
    read: async (_tx, keys) => {
      reads.push([...keys].sort());
      return new Map(keys.map((k) => [k, values.get(k) ?? null]));
    },
  });
  return { reader, reads };
}

/** A command that holds its key until released, as one waiting in a group-commit queue does. */
function waiting(reader: BatchReads<string, number | null>, tenant: string, key: string) {
  let release!: () => void;
  const held = new Promise<void>((r) => {
    release = r;
  });
  const done = reader.during(tenant, key, () => held);
  return { release, done };
}

describe("BatchReads", () => {
  it("the first load of a transaction reads what every waiting key of the tenant needs, once", async () => {
    const values = new Map([["a", 1]]);
    const { reader, reads } = store(values);
    const a = waiting(reader, "t1", "a");
    const b = waiting(reader, "t1", "b");
    const other = waiting(reader, "t2", "c");
    const tx = {};
    expect(await reader.of(tx, "t1", "a")).toBe(1);
    expect(await reader.of(tx, "t1", "b")).toBeNull();
    // Another tenant's key is not its business.
    expect(reads).toEqual([["a", "b"]]);
    for (const w of [a, b, other]) w.release();
    await Promise.all([a.done, b.done, other.done]);
  });

  it("a later transaction reads again: what the one before committed is seen", async () => {
    const values = new Map<string, number>();
    const { reader, reads } = store(values);
    const a = waiting(reader, "t1", "a");
    expect(await reader.of({}, "t1", "a")).toBeNull();
    values.set("a", 7);
    expect(await reader.of({}, "t1", "a")).toBe(7);
    expect(reads).toHaveLength(2);
    a.release();
    await a.done;
  });

  it("a key not waiting when the transaction's read was made is read on its own", async () => {
    const { reader, reads } = store(new Map([["late", 3]]));
    const a = waiting(reader, "t1", "a");
    const tx = {};
    await reader.of(tx, "t1", "a");
    expect(await reader.of(tx, "t1", "late")).toBe(3);
    expect(reads).toEqual([["a"], ["late"]]);
    a.release();
    await a.done;
  });

  it("a key answered is forgotten", async () => {
    const { reader, reads } = store(new Map());
    const a = waiting(reader, "t1", "a");
    a.release();
    await a.done;
    await reader.of({}, "t1", "b");
    expect(reads).toEqual([["b"]]);
  });
});
