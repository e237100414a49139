import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeBus, connectBus, type Bus } from "@mam/bus/connection.ts";
import { eventSubject } from "@mam/contracts/envelope.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { Directory } from "@mam/smtp-ingress/smtp/directory.ts";
import { mailboxEnvelope } from "../support/events.ts";

/**
 * The address directory on a stream of this file's own, fed InboxCreated events as the mailbox
 * publishes them; no mailbox answers its snapshot request, so it follows the stream from the start.
 */
const iso = isolate();
let bus: Bus;
let directory: Directory;
const stream = `DIR_${iso.tag}`;
const tenantId = randomUUID();
const workspaceId = randomUUID();

function inboxCreated(address: string): Promise<unknown> {
  const inboxId = randomUUID();
  const e = mailboxEnvelope(
    { tenantId, workspaceId, aggregateId: inboxId },
    {
      type: "InboxCreated",
      schemaVersion: 1,
      data: { inboxId, tenantId, workspaceId, username: address.split("@")[0]!, domain: "agents.test", address, displayName: null, metadata: {} },
    },
  );
  return bus.js.publish(eventSubject(iso.prefix, e), JSON.stringify(e));
}
/** Another context's event: the stream moves on, the directory's filter sees nothing. */
const otherEvent = () => bus.js.publish(`${iso.prefix}evt.identity.${tenantId}.${workspaceId}.Unrelated`, "{}");

beforeAll(async () => {
  bus = await connectBus({ url: iso.urls.NATS_URL, prefix: iso.prefix, name: "directory-test", logger: createLogger("test", "silent") });
  await bus.jsm.streams.add({ name: stream, subjects: [`${iso.prefix}evt.>`] });
  await inboxCreated("first@agents.test");
  directory = new Directory(bus, stream, createLogger("test", "silent"), 0);
  await directory.start();
  await waitFor(() => directory.checkCaughtUp(), { timeoutMs: 10_000, what: "the directory" });
});
afterAll(async () => {
  directory.stop();
  await bus.jsm.streams.delete(stream).catch(() => false);
  await closeBus(bus);
});

describe("Directory.current", () => {
  it("holds every address created before it was asked, however far the consumer was behind", async () => {
    // Many events stored at once: the ordered consumer is still applying them when asked.
    const addresses = Array.from({ length: 400 }, (_, i) => `burst${i}@agents.test`);
    await Promise.all(addresses.map((a) => inboxCreated(a)));
    await otherEvent();
    expect(await directory.current()).toBe(true);
    for (const a of addresses) expect(directory.lookup(a), a).toBeDefined();
  });

  it("answers for an address no inbox has once a probe shows nothing is left, other contexts' events after it or not", async () => {
    await otherEvent();
    expect(await directory.current()).toBe(true);
    expect(directory.lookup("nobody@agents.test")).toBeUndefined();
    expect(directory.lookup("first@agents.test")).toBeDefined();
  });

  it("misses at the same moment share their probes: a flood of unknown addresses does not make a consumer each", async () => {
    const before = (await bus.jsm.streams.info(stream)).state.consumer_count;
    const answers = await Promise.all(Array.from({ length: 200 }, () => directory.current()));
    expect(answers.every((a) => a)).toBe(true);
    // Probe consumers stay until the server's inactive threshold (5 s): each one shows here.
    expect((await bus.jsm.streams.info(stream)).state.consumer_count - before).toBeLessThanOrEqual(3);
  });

  it("a directory whose consumer stalls answers false after the wait, probing the server a few times a second only", async () => {
    const d = new Directory(bus, stream, createLogger("test", "silent"), 0);
    await d.start();
    await waitFor(() => d.checkCaughtUp(), { timeoutMs: 10_000, what: "the second directory" });
    // Its consumer stops taking events, the directory left running.
    (d as unknown as { messages: { stop(): void } }).messages.stop();
    await inboxCreated("stalled@agents.test");
    const before = (await bus.jsm.streams.info(stream)).state.consumer_count;
    try {
      expect(await d.current(1_500)).toBe(false);
      // Probe consumers stay 5 s after their last use: every one made shows here.
      expect((await bus.jsm.streams.info(stream)).state.consumer_count - before).toBeLessThanOrEqual(8);
    } finally {
      d.stop();
    }
  });

  it("a stopped directory answers false: the caller says try again, never 550", async () => {
    const d = new Directory(bus, stream, createLogger("test", "silent"), 0);
    await d.start();
    d.stop();
    expect(await d.current(2_000)).toBe(false);
  });
});
