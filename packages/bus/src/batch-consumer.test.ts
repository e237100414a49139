import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "@mam/runtime/logger.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { BatchConsumer } from "./batch-consumer.ts";
import { closeBus, connectBus, type Bus } from "./connection.ts";
import { ensureEventsStream } from "./streams.ts";

describe("BatchConsumer", () => {
  const iso = isolate();
  const logger = createLogger("test", "silent");
  let bus: Bus;
  let stream: string;
  beforeAll(async () => {
    bus = await connectBus({ url: iso.urls.NATS_URL, prefix: iso.prefix, name: "batch-consumer-test", logger });
    stream = await ensureEventsStream(bus);
  });
  afterAll(async () => {
    await closeBus(bus);
    await iso.cleanup();
  });

  /** Publishes one message, and two more once the consumer holds the first; the batches as handled. */
  async function batchesOf(durable: string, o: { lingerMs?: number; spacingMs?: number; maxBatch?: number } = {}, began: number[] = []): Promise<string[][]> {
    const subject = (n: number) => `${iso.prefix}evt.${durable}.t1._.M${n}`;
    const batches: string[][] = [];
    const c = new BatchConsumer({
      bus,
      stream,
      durable,
      filterSubject: `${iso.prefix}evt.${durable}.>`,
      logger,
      ...o,
      handle: async (msgs, settle) => {
        began.push(performance.now());
        batches.push(msgs.map((m) => m.subject.split(".").at(-1)!));
        for (const m of msgs) settle(m, "ack");
      },
    });
    await c.start();
    await bus.js.publish(subject(1), "{}");
    // The first is in this process (delivered, not acknowledged) or handled already.
    await expect
      .poll(async () => {
        const info = await bus.jsm.consumers.info(stream, durable);
        return info.num_ack_pending + info.ack_floor.stream_seq > 0;
      })
      .toBe(true);
    await bus.js.publish(subject(2), "{}");
    await bus.js.publish(subject(3), "{}");
    await expect.poll(() => batches.flat().length, { timeout: 10_000 }).toBe(3);
    await c.stop();
    return batches;
  }

  it("with a linger, a batch waits for what arrives meanwhile; without, the first message goes alone", async () => {
    expect(await batchesOf("lingering", { lingerMs: 3_000 })).toEqual([["M1", "M2", "M3"]]);
    expect((await batchesOf("eager"))[0]).toEqual(["M1"]);
  });

  it("a batch that fills up goes at once, however long its linger", async () => {
    expect(await batchesOf("filled", { lingerMs: 600_000, maxBatch: 3 })).toEqual([["M1", "M2", "M3"]]);
  });

  it("with a spacing, the first message goes at once and what comes during the spacing goes together after it", async () => {
    const began: number[] = [];
    const started = performance.now();
    expect(await batchesOf("spaced", { spacingMs: 1_500 }, began)).toEqual([["M1"], ["M2", "M3"]]);
    // The first at once (the test's own publishing and polling aside), the second a spacing after
    // the first (give or take the moment between the consumer's clock and the handler's; without
    // a spacing it comes within milliseconds).
    expect(began[0]! - started).toBeLessThan(1_500);
    expect(began[1]! - began[0]!).toBeGreaterThan(1_400);
  });
});
