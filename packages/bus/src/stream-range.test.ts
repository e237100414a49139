import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "@mam/runtime/logger.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { TcpRelay } from "@mam/testing/tcp-relay.ts";
import { closeBus, connectBus, type Bus } from "./connection.ts";
import { newestSeq, nextSeq, probeAfter, readRange } from "./stream-range.ts";

/** Reading a stream by position, on a real stream of this file's own with two kinds of subjects. */
const iso = isolate();
let bus: Bus;
const stream = `RANGE_${iso.tag}`;
const on = (kind: "a" | "b", n: number) => `${iso.prefix}r.${kind}.${n}`;
const filterA = `${iso.prefix}r.a.>`;
/** Stream sequences of what `write` stored, by kind. */
const stored: { a: number[]; b: number[] } = { a: [], b: [] };

async function write(kind: "a" | "b", n = 1): Promise<void> {
  for (let i = 0; i < n; i++) stored[kind].push((await bus.js.publish(on(kind, stored[kind].length), String(stored[kind].length))).seq);
}
async function readAll(from: { seq: number } | { time: Date }, to: number, stallMs?: number): Promise<number[]> {
  const seqs: number[] = [];
  for await (const m of readRange(bus, stream, { filter: filterA, from, to, stallMs })) seqs.push(m.seq);
  return seqs;
}

/**
 * A stream of its own (`<stream>_<tag>`) holding `n` entries on `<prefix><tag>.<i % 3>`, given to
 * `fn` with its filter and the entries' sequences, deleted after.
 */
async function withEntries(tag: string, n: number, fn: (name: string, filter: string, seqs: number[]) => Promise<void>): Promise<void> {
  const name = `${stream}_${tag}`;
  await bus.jsm.streams.add({ name, subjects: [`${iso.prefix}${tag}.>`] });
  try {
    const seqs: number[] = [];
    for (let i = 0; i < n; i++) seqs.push((await bus.js.publish(`${iso.prefix}${tag}.${i % 3}`, "x")).seq);
    await fn(name, `${iso.prefix}${tag}.>`, seqs);
  } finally {
    await bus.jsm.streams.delete(name);
  }
}

beforeAll(async () => {
  bus = await connectBus({ url: iso.urls.NATS_URL, prefix: iso.prefix, name: "range-test", logger: createLogger("test", "silent") });
  await bus.jsm.streams.add({ name: stream, subjects: [`${iso.prefix}r.>`] });
  // a b a b a b, then b b: the filter's last entry is not the stream's.
  for (let i = 0; i < 3; i++) {
    await write("a");
    await write("b");
  }
  await write("b", 2);
});
afterAll(async () => {
  await bus.jsm.streams.delete(stream).catch(() => false);
  await closeBus(bus);
});

describe("newestSeq", () => {
  it("is the newest entry on the filter, not the stream's last; 0 for a filter nothing matches", async () => {
    expect(await newestSeq(bus, stream, filterA)).toBe(stored.a.at(-1));
    expect(await newestSeq(bus, stream, `${iso.prefix}r.c.>`)).toBe(0);
  });
});

describe("readRange", () => {
  it("reads the filter's entries from a sequence up to the end given, included, and ends there", async () => {
    const [a0, a1, a2] = stored.a as [number, number, number];
    expect(await readAll({ seq: 1 }, a2)).toEqual([a0, a1, a2]);
    expect(await readAll({ seq: a0 + 1 }, a1)).toEqual([a1]);
  });

  it("reads nothing, at once, when the start is past the end", async () => {
    const last = stored.a.at(-1)!;
    // Without the check at the start, this would wait out the stall (a minute here) for an entry that never comes.
    expect(await readAll({ seq: last + 1 }, last, 60_000)).toEqual([]);
    expect(await readAll({ time: new Date(Date.now() + 60_000) }, last, 60_000)).toEqual([]);
  });

  it("ends, with what it read, when the end it was given is no longer in the stream", async () => {
    await withEntries("GONE", 3, async (name, filter, seqs) => {
      await bus.jsm.streams.deleteMessage(name, seqs[2]!, false);
      const read = [];
      for await (const m of readRange(bus, name, { filter, from: { seq: 1 }, to: seqs[2]!, stallMs: 300 })) read.push(m.seq);
      expect(read).toEqual(seqs.slice(0, 2));
    });
  });
});

describe("readRange, its consumer lost", () => {
  it("reads on with a new consumer from the entry after the last it gave, when the server loses its consumer", async () => {
    await withEntries("LOST", 300, async (name, filter, seqs) => {
      const read: number[] = [];
      for await (const m of readRange(bus, name, { filter, from: { seq: 1 }, to: seqs.at(-1)!, batch: 10, stallMs: 300 })) {
        read.push(m.seq);
        // As a restarted server would: every consumer of the stream gone, mid-read; five times,
        // more than the stalls in a row a read takes before it gives up.
        if (read.length % 50 === 0 && read.length < 300) for await (const c of await bus.jsm.consumers.list(name)) await bus.jsm.consumers.delete(name, c.name);
      }
      expect(read).toEqual(seqs);
    });
  });
});

describe("readRange, entries lost on the way", () => {
  it("reads again what the server sent on a connection that dropped, rather than taking it as removed", async () => {
    const relay = new TcpRelay(new URL(iso.urls.NATS_URL.split(",")[0]!));
    const through = await connectBus({ url: await relay.listen(), prefix: iso.prefix, name: "range-drop", logger: createLogger("test", "silent") });
    try {
      await withEntries("DROP", 300, async (name, filter, seqs) => {
        const read: number[] = [];
        for await (const m of readRange(through, name, { filter, from: { seq: 1 }, to: seqs.at(-1)!, batch: 10, stallMs: 1_000 })) {
          read.push(m.seq);
          // The server goes on sending the batches this reader asks for; none arrives, then the link drops.
          if (read.length === 250) relay.cut(300);
        }
        expect(read).toEqual(seqs);
      });
    } finally {
      await closeBus(through);
      await relay.close();
    }
  });
});

describe("nextSeq", () => {
  it("is the first entry on the filter at or after a sequence; 0 past the filter's last", async () => {
    const [a0, a1, a2] = stored.a as [number, number, number];
    expect(await nextSeq(bus, stream, filterA, 1)).toBe(a0);
    expect(await nextSeq(bus, stream, filterA, a0 + 1)).toBe(a1);
    expect(await nextSeq(bus, stream, filterA, a2)).toBe(a2);
    expect(await nextSeq(bus, stream, filterA, a2 + 1)).toBe(0);
  });
});

describe("probeAfter", () => {
  it("gives the first entry on the filter past a sequence, and how far a 'none' reaches, whatever else follows it", async () => {
    const [a0, a1, a2] = stored.a as [number, number, number];
    const last = stored.b.at(-1)!;
    expect(await probeAfter(bus, stream, filterA, 0)).toEqual({ through: last, first: a0 });
    expect(await probeAfter(bus, stream, filterA, a0)).toEqual({ through: last, first: a1 });
    expect(await probeAfter(bus, stream, filterA, a2 - 1)).toEqual({ through: last, first: a2 });
    // Past the filter's last entry: only other subjects follow.
    expect(await probeAfter(bus, stream, filterA, a2)).toEqual({ through: last });
    expect(await probeAfter(bus, stream, filterA, last)).toEqual({ through: last });
  });
});
