import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "@mam/runtime/logger.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { BatchConsumer, type BatchConsumerOptions } from "./batch-consumer.ts";
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

  /** A consumer of its own durable, on the durable's own subjects. */
  const consumerOn = (durable: string, o: Omit<BatchConsumerOptions, "bus" | "stream" | "durable" | "filterSubject" | "logger">) =>
    new BatchConsumer({ bus, stream, durable, filterSubject: `${iso.prefix}evt.${durable}.>`, logger, ...o });

  /** Publishes one message, and two more once the consumer holds the first; the batches as handled. */
  async function batchesOf(durable: string, o: { lingerMs?: number; spacingMs?: number; maxBatch?: number } = {}, began: number[] = []): Promise<string[][]> {
    const subject = (n: number) => `${iso.prefix}evt.${durable}.t1._.M${n}`;
    const batches: string[][] = [];
    const c = consumerOn(durable, {
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

  it("ordered: a batch tried again that made progress waits the first pause again, not a longer one", async () => {
    const durable = "progress";
    const subject = (n: number) => `${iso.prefix}evt.${durable}.t1._.M${n}`;
    for (const n of [1, 2, 3, 4]) await bus.js.publish(subject(n), "{}");
    const settledInOrder: string[] = [];
    const c = consumerOn(durable, {
      ordered: true,
      maxBatch: 4,
      // The four come as one batch.
      lingerMs: 500,
      // A second pause of ten minutes: taken only if progress did not start the pauses again.
      retryPausesMs: [50, 600_000],
      // Each try settles only the first message in line: every try makes progress.
      handle: async (msgs, settle) => {
        settle(msgs[0]!, "ack");
        settledInOrder.push(msgs[0]!.subject.split(".").at(-1)!);
      },
    });
    await c.start();
    try {
      await expect.poll(() => settledInOrder.length, { timeout: 20_000 }).toBe(4);
      expect(settledInOrder).toEqual(["M1", "M2", "M3", "M4"]);
    } finally {
      await c.stop();
    }
  }, 30_000);
});
