import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AckPolicy, DeliverPolicy } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { createLogger } from "@mam/runtime/logger.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { closeBus, connectBus, type Bus } from "./connection.ts";
import { consumerCaughtUp, DurableConsumer, PULL_EXPIRES_MS, streamEnd } from "./consumer.ts";
import { ensureEventsStream } from "./streams.ts";

describe("DurableConsumer", () => {
  const iso = isolate();
  const logger = createLogger("test", "silent");
  let bus: Bus;
  let stream: string;
  beforeAll(async () => {
    bus = await connectBus({ url: iso.urls.NATS_URL, prefix: iso.prefix, name: "consumer-test", logger });
    stream = await ensureEventsStream(bus);
  });
  afterAll(async () => {
    await closeBus(bus);
    await iso.cleanup();
  });

  const consumer = (ackWaitMs: number, maxDeliver: number) =>
    new DurableConsumer({
      bus,
      stream,
      durable: "settings",
      filterSubject: `${iso.prefix}evt.>`,
      logger,
      handle: async () => undefined,
      ackWaitMs,
      maxDeliver,
    });

  it("brings an existing durable's ack wait and max deliveries up to date, keeping its position", async () => {
    await bus.js.publish(`${iso.prefix}evt.test._._.Happened`, "{}");
    const first = consumer(30_000, 20);
    await first.start();
    const end = await streamEnd(bus, stream);
    await expect.poll(() => first.caughtUp(end), { timeout: 5_000 }).toBe(true);
    await first.stop();

    const second = consumer(10_000, 7);
    await second.start();
    const info = await bus.jsm.consumers.info(stream, "settings");
    expect(info.config.ack_wait).toBe(nanos(10_000));
    expect(info.config.max_deliver).toBe(7);
    expect(info.delivered.stream_seq).toBe(1);
    await second.stop();
  });

  it("narrows an existing durable's filter to a newer release's, from where it is: only matching messages come after", async () => {
    const subject = (t: string) => `${iso.prefix}evt.narrow.t1._.${t}`;
    const handled: string[] = [];
    const narrowing = (filterSubject: string) =>
      new DurableConsumer({ bus, stream, durable: "narrowing", filterSubject, logger, handle: async (msg) => void handled.push(msg.subject) });
    await bus.js.publish(subject("Sent"), "{}");
    await bus.js.publish(subject("Other"), "{}");
    const wide = narrowing(`${iso.prefix}evt.narrow.>`);
    await wide.start();
    await expect.poll(() => handled.length, { timeout: 5_000 }).toBe(2);
    await wide.stop();

    const narrow = narrowing(`${iso.prefix}evt.narrow.*.*.Sent`);
    await narrow.start();
    expect((await bus.jsm.consumers.info(stream, "narrowing")).config.filter_subject).toBe(`${iso.prefix}evt.narrow.*.*.Sent`);
    await bus.js.publish(subject("Other"), "{}");
    await bus.js.publish(subject("Sent"), "{}");
    await expect.poll(() => handled.length, { timeout: 5_000 }).toBe(3);
    const end = await streamEnd(bus, stream);
    await expect.poll(() => narrow.caughtUp(end), { timeout: 5_000 }).toBe(true);
    // Nothing handled twice, and the other type after the change never delivered.
    expect(handled).toEqual([subject("Sent"), subject("Other"), subject("Sent")]);
    await narrow.stop();
  });

  it("caught up by positions: not while an entry up to the bound waits; yes once its puller's next pull finds only other subjects after it", async () => {
    const subject = (t: string) => `${iso.prefix}evt.bound.t1._.${t}`;
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const c = new DurableConsumer({
      bus,
      stream,
      durable: "bounded",
      filterSubject: `${iso.prefix}evt.bound.*.*.Mine`,
      logger,
      handle: () => held,
    });
    await bus.js.publish(subject("Mine"), "{}");
    await c.start();
    try {
      // Delivered, not acknowledged: not caught up, whatever follows on other subjects.
      for (let i = 0; i < 20; i++) await bus.js.publish(subject("Other"), "{}");
      const end = await streamEnd(bus, stream);
      await new Promise((r) => setTimeout(r, 200));
      expect(await c.caughtUp(end)).toBe(false);
      release();
      // The position reaches the bound by the puller's next pull at the latest.
      await expect.poll(() => c.caughtUp(end), { timeout: 2 * PULL_EXPIRES_MS + 2_000, interval: 50 }).toBe(true);
      // A bound past anything stored yet is not reached.
      expect(await c.caughtUp(end + 1)).toBe(false);
    } finally {
      release();
      await c.stop();
    }
  });

  it("not caught up when a late acknowledgement from an earlier consumer of the same name moves the floor past what this one has not delivered", async () => {
    const subject = `${iso.prefix}evt.late.t1._.Mine`;
    const seqs: number[] = [];
    for (let i = 0; i < 10; i++) seqs.push((await bus.js.publish(subject, "{}")).seq);
    const declare = (start: number) =>
      bus.jsm.consumers.add(stream, {
        durable_name: "late",
        filter_subject: `${iso.prefix}evt.late.>`,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: start,
      });
    const take = async (n: number) => {
      const got = [];
      for await (const m of await (await bus.js.consumers.get(stream, "late")).fetch({ max_messages: n, expires: 2_000 })) got.push(m);
      return got;
    };
    // The earlier consumer held the last five; it is re-created from the start (a replay)…
    await declare(seqs[5]!);
    const earlier = await take(5);
    await bus.jsm.consumers.delete(stream, "late");
    await declare(seqs[0]!);
    await take(3);
    // …and the replica that held them acknowledges one.
    await earlier[0]!.ackAck();
    const info = await bus.jsm.consumers.info(stream, "late");
    expect(info.ack_floor.stream_seq).toBeGreaterThanOrEqual(seqs[5]!);
    expect(await consumerCaughtUp(bus, stream, "late", seqs[5]!)).toBe(false);
    await bus.jsm.consumers.delete(stream, "late");
  });

  it("never drops a message whose handling keeps failing (it may heal); poison is terminated at once", async () => {
    const subject = (t: string) => `${iso.prefix}evt.stub.t1._.${t}`;
    let failuresLeft = 25;
    const handled: string[] = [];
    let poisonSeen = 0;
    const c = new DurableConsumer({
      bus,
      stream,
      durable: "stubborn",
      filterSubject: `${iso.prefix}evt.stub.>`,
      logger,
      retryInPlaceMs: [],
      backoffMs: [10],
      isPoison: (err) => (err as Error).message === "poison",
      handle: async (msg) => {
        const type = msg.subject.split(".").at(-1)!;
        if (type === "Poison") {
          poisonSeen++;
          throw new Error("poison");
        }
        if (failuresLeft-- > 0) throw new Error("database down");
        handled.push(type);
      },
    });
    await bus.js.publish(subject("Poison"), "{}");
    await bus.js.publish(subject("Healed"), "{}");
    await c.start();
    try {
      await expect.poll(() => handled, { timeout: 15_000 }).toEqual(["Healed"]);
      const end = await streamEnd(bus, stream);
      await expect.poll(() => c.caughtUp(end), { timeout: 5_000 }).toBe(true);
      expect(poisonSeen).toBe(1);
      expect((await bus.jsm.consumers.info(stream, "stubborn")).config.max_deliver).toBe(-1);
    } finally {
      await c.stop();
    }
  });

  it("a message handled for longer than the ack wait, and one queued behind it, are not delivered again meanwhile", async () => {
    const calls = new Map<string, number>();
    // Two replicas on one durable: what the first holds too long would go to the second.
    const replica = () =>
      new DurableConsumer({
        bus,
        stream,
        durable: "slow",
        filterSubject: `${iso.prefix}evt.slow.>`,
        logger,
        ackWaitMs: 1_500,
        handle: async (msg) => {
          const type = msg.subject.split(".").at(-1)!;
          calls.set(type, (calls.get(type) ?? 0) + 1);
          if (type === "Took") await new Promise((r) => setTimeout(r, 4_000));
        },
      });
    // Same tenant: the second waits its turn behind the first.
    await bus.js.publish(`${iso.prefix}evt.slow.t1._.Took`, "{}");
    await bus.js.publish(`${iso.prefix}evt.slow.t1._.Queued`, "{}");
    const first = replica();
    await first.start();
    await expect.poll(() => calls.get("Took"), { timeout: 5_000, interval: 20 }).toBe(1);
    const second = replica();
    await second.start();
    try {
      const end = await streamEnd(bus, stream);
      await expect.poll(() => first.caughtUp(end), { timeout: 10_000, interval: 200 }).toBe(true);
      expect(Object.fromEntries(calls)).toEqual({ Took: 1, Queued: 1 });
    } finally {
      await Promise.all([first.stop(), second.stop()]);
    }
  });

  it("ordered: a message failing past the pauses in place is retried there, and the tenant's next waits for it", async () => {
    let failuresLeft = 4;
    const handled: string[] = [];
    const c = new DurableConsumer({
      bus,
      stream,
      durable: "ordered",
      filterSubject: `${iso.prefix}evt.ordered.>`,
      logger,
      retryInPlaceMs: [10],
      backoffMs: [10],
      ordered: true,
      handle: async (msg) => {
        const type = msg.subject.split(".").at(-1)!;
        if (type === "First" && failuresLeft-- > 0) throw new Error("database down");
        handled.push(type);
      },
    });
    await bus.js.publish(`${iso.prefix}evt.ordered.t1._.First`, "{}");
    await bus.js.publish(`${iso.prefix}evt.ordered.t1._.Second`, "{}");
    await c.start();
    try {
      await expect.poll(() => handled.length, { timeout: 10_000 }).toBe(2);
      expect(handled).toEqual(["First", "Second"]);
    } finally {
      await c.stop();
    }
  });
});
