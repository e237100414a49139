import type { PubAck } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "@mam/runtime/logger.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { closeBus, connectBus, type Bus } from "./connection.ts";
import { publishChained, publishChainedPerKey, publishEncoded } from "./events.ts";
import { ensureEventsStream } from "./streams.ts";

/** Chained publishing against a real stream: pipelined, in order, never a later message without the one before. */
const iso = isolate();
let bus: Bus;
let stream: string;
beforeAll(async () => {
  bus = await connectBus({ url: iso.urls.NATS_URL, prefix: iso.prefix, name: "chain-test", logger: createLogger("test", "silent") });
  stream = await ensureEventsStream(bus);
});
afterAll(async () => {
  await closeBus(bus);
  await iso.cleanup();
});

/** Ids of the stream's messages on `subject` (without the prefix), in the stream's order. */
async function storedOn(subject: string): Promise<string[]> {
  const ids: string[] = [];
  const info = await bus.jsm.streams.info(stream);
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await bus.jsm.streams.getMessage(stream, { seq }).catch(() => undefined);
    if (m?.subject === `${iso.prefix}${subject}`) ids.push(m.header.get("Nats-Msg-Id"));
  }
  return ids;
}

describe("publishChained", () => {
  type Item = { id: string; skip?: boolean };
  const subject = (run: string) => `evt.chain.${run}._.Happened`;
  const storedIds = (run: string) => storedOn(subject(run));
  const chain = (run: string, items: Item[], told: string[], send?: (item: Item, afterId: string | undefined) => Promise<PubAck> | undefined) =>
    publishChained(items, {
      send: send ?? ((item, afterId) => (item.skip ? undefined : publishEncoded(bus, subject(run), "{}", item.id, afterId))),
      idOf: (item) => item.id,
      stored: (item) => told.push(item.id),
    });

  it("stores every message in order, and tells of each stored one (those with nothing to send too) in order", async () => {
    const items: Item[] = [{ id: "a1" }, { id: "a2", skip: true }, { id: "a3" }, { id: "a4" }];
    const told: string[] = [];
    await chain("a", items, told);
    expect(told).toEqual(["a1", "a2", "a3", "a4"]);
    expect(await storedIds("a")).toEqual(["a1", "a3", "a4"]);
  });

  it("starts a new round where another publisher came between, storing each message once and in order", async () => {
    const told: string[] = [];
    let cut = false;
    await chain("b", [{ id: "b1" }, { id: "b2" }, { id: "b3" }], told, (item, afterId) => {
      const sent = publishEncoded(bus, subject("b"), "{}", item.id, afterId);
      // Another publisher's message lands right after b1 is sent, before b2.
      if (item.id === "b1" && !cut) {
        cut = true;
        void publishEncoded(bus, "evt.chain.other._.Happened", "{}", "other-1");
      }
      return sent;
    });
    expect(told).toEqual(["b1", "b2", "b3"]);
    expect(await storedIds("b")).toEqual(["b1", "b2", "b3"]);
  });

  it("stops at a message that fails: those before it are stored and told, none after it is stored", async () => {
    const told: string[] = [];
    const refused = new Error("refused");
    const err = await chain("c", [{ id: "c1" }, { id: "c2" }, { id: "c3" }, { id: "c4" }], told, (item, afterId) =>
      item.id === "c2" ? Promise.reject(refused) : publishEncoded(bus, subject("c"), "{}", item.id, afterId),
    ).catch((e: unknown) => e);
    expect(err).toBe(refused);
    expect(told).toEqual(["c1"]);
    // c3 was sent expecting c2 last, which the stream never took: refused too, and so c4.
    expect(await storedIds("c")).toEqual(["c1"]);
  });

  it("takes a send that throws as that message's failure: what was sent before it is still stored and told", async () => {
    const told: string[] = [];
    const err = await chain("d", [{ id: "d1" }, { id: "d2" }, { id: "d3" }], told, (item, afterId) => {
      if (item.id === "d2") throw new Error("cannot encode");
      return publishEncoded(bus, subject("d"), "{}", item.id, afterId);
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe("cannot encode");
    expect(told).toEqual(["d1"]);
    expect(await storedIds("d")).toEqual(["d1"]);
  });
  it("sends a round of at most the window's items and bytes (at least one), the next once it is stored", async () => {
    const rounds = async (run: string, ids: string[], o: { window: { items?: number; bytes?: number }; sizeOf?: (item: Item) => number }) => {
      const told: string[] = [];
      const afterIds: (string | undefined)[] = [];
      let inFlight = 0;
      let most = 0;
      await publishChained(
        ids.map((id) => ({ id: `${run}${id}` })),
        {
          send: (item, afterId) => {
            afterIds.push(afterId);
            most = Math.max(most, ++inFlight);
            return publishEncoded(bus, subject(run), "{}", item.id, afterId).finally(() => inFlight--);
          },
          idOf: (item) => item.id,
          stored: (item) => told.push(item.id),
          ...o,
        },
      );
      expect(told).toEqual(ids.map((id) => `${run}${id}`));
      expect(await storedIds(run)).toEqual(told);
      return { most, afterIds };
    };
    const byItems = await rounds("e", ["1", "2", "3", "4", "5"], { window: { items: 2 } });
    expect(byItems.most).toBe(2);
    // Each round's first goes as it is (everything before it stored), the rest chained.
    expect(byItems.afterIds).toEqual([undefined, "e1", undefined, "e3", undefined]);
    const byBytes = await rounds("f", ["1", "2", "3", "4"], { window: { bytes: 7 }, sizeOf: () => 3 });
    expect(byBytes.afterIds).toEqual([undefined, "f1", undefined, "f3"]);
    const oversized = await rounds("g", ["1", "2"], { window: { bytes: 5 }, sizeOf: () => 10 });
    expect(oversized.afterIds).toEqual([undefined, undefined]);
    const whole = await rounds("h", ["1", "2", "3"], { window: {} });
    expect(whole.afterIds).toEqual([undefined, "h1", "h2"]);
  });
});

describe("publishChainedPerKey", () => {
  type Item = { key: string; id: string };
  const subject = "evt.perkey._._.Happened";
  const storedIds = () => storedOn(subject);
  /** Items of keys a and b, interleaved; `failing` ids are refused once each. */
  const run = async (run: string, failing: string[], o: { maxHeld?: number; connected?: () => boolean } = {}) => {
    const items: Item[] = ["a1", "b1", "a2", "b2", "a3", "b3"].map((x) => ({ key: x[0]!, id: `${run}-${x}` }));
    const told: string[] = [];
    const refused = new Set(failing.map((f) => `${run}-${f}`));
    const result = await publishChainedPerKey(items, {
      send: (item, afterId) => {
        if (refused.delete(item.id)) return Promise.reject(new Error(`refused ${item.id}`));
        return publishEncoded(bus, subject, "{}", item.id, afterId);
      },
      idOf: (item) => item.id,
      stored: (item) => told.push(item.id),
      keyOf: (item) => item.key,
      maxHeld: o.maxHeld ?? 4,
      connected: o.connected ?? (() => true),
    });
    return { ...result, told };
  };

  it("holds back only the key of a message not stored: the other key's go on, each in order", async () => {
    const before = (await storedIds()).length;
    const r = await run("p", ["a2"]);
    expect((r.failure as Error).message).toBe("refused p-a2");
    expect(r.held).toBe(1);
    expect(r.told).toEqual(["p-a1", "p-b1", "p-b2", "p-b3"]);
    expect((await storedIds()).slice(before)).toEqual(["p-a1", "p-b1", "p-b2", "p-b3"]);
  });

  it("stops once maxHeld keys are held, and sends nothing while NATS is disconnected", async () => {
    const before = (await storedIds()).length;
    const r = await run("q", ["a2"], { maxHeld: 1 });
    expect(r.held).toBe(1);
    expect(r.told).toEqual(["q-a1", "q-b1"]);
    const off = await run("r", [], { connected: () => false });
    expect((off.failure as Error).message).toMatch(/disconnected/);
    expect(off.told).toEqual([]);
    expect((await storedIds()).slice(before)).toEqual(["q-a1", "q-b1"]);
  });
});
