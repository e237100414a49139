import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeBus, connectBus, type Bus } from "@mam/bus/connection.ts";
import { rpcSubject } from "@mam/contracts/subjects.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { ClaimsLookup } from "./claims-lookup.ts";

/** The lookups of addresses smtp-ingress's directory lacks, against a stand-in for the mailbox on the real NATS. */
describe("ClaimsLookup", () => {
  const iso = isolate();
  let bus: Bus;
  let mailbox: Bus;
  const requests: string[][] = [];
  let answer: "found" | "silent" = "found";

  beforeAll(async () => {
    const logger = createLogger("test", "silent");
    bus = await connectBus({ url: iso.urls.NATS_URL, prefix: iso.prefix, name: "claims-lookup-test", logger });
    mailbox = await connectBus({ url: iso.urls.NATS_URL, prefix: iso.prefix, name: "claims-lookup-mailbox", logger });
    mailbox.nc.subscribe(rpcSubject(iso.prefix, RpcContracts.mailbox.directoryLookup.subject), {
      callback: (_err, msg) => {
        const { addresses } = msg.json<{ addresses: string[] }>();
        requests.push(addresses);
        if (answer === "silent") return;
        const entries = addresses
          .filter((a) => a.startsWith("known"))
          .map((address) => ({ address, tenantId: crypto.randomUUID(), workspaceId: crypto.randomUUID(), inboxId: crypto.randomUUID() }));
        msg.respond(JSON.stringify({ ok: true, status: 200, body: { entries } }));
      },
    });
    await mailbox.nc.flush();
  });
  afterAll(async () => {
    await closeBus(bus);
    await closeBus(mailbox);
    await iso.cleanup();
  });

  it("asks one request at a time, the misses of the meantime together, and answers each its own", async () => {
    requests.length = 0;
    answer = "found";
    const lookup = new ClaimsLookup(bus, createLogger("test", "silent"));
    const addresses = Array.from({ length: 250 }, (_, i) => `${i % 2 ? "known" : "unknown"}-${i}@agents.test`);
    const answers = await Promise.all([...addresses, "Known-0@Agents.Test", "known-1@agents.test"].map((a) => lookup.of(a)));
    expect(answers.slice(0, 250).map((m) => m !== null)).toEqual(addresses.map((a) => a.startsWith("known")));
    // Asked in lower case, and an address asked twice is asked once.
    expect(answers[250]).not.toBeNull();
    expect(answers[251]).toEqual(answers[1]);
    expect(requests.length).toBeLessThanOrEqual(4);
    expect(requests.every((r) => r.length <= 100)).toBe(true);
    expect(new Set(requests.flat()).size).toBe(251);
  });

  it("a request that fails fails every address waiting then, not one batch after another", async () => {
    requests.length = 0;
    answer = "silent";
    const lookup = new ClaimsLookup(bus, createLogger("test", "silent"), 300);
    const outcomes = await Promise.allSettled(Array.from({ length: 250 }, (_, i) => lookup.of(`unknown-${i}@agents.test`)));
    expect(outcomes.every((o) => o.status === "rejected")).toBe(true);
    // One request timed out; the 249 that waited behind it were failed with it (three more before).
    expect(requests).toHaveLength(1);
    // For a while the mailbox is not asked at all; then a miss asks again.
    answer = "found";
    await expect(lookup.of("known-soon@agents.test")).rejects.toThrow();
    expect(requests).toHaveLength(1);
    await waitFor(
      () =>
        lookup.of("known-again@agents.test").then(
          (m) => m !== null,
          () => false,
        ),
      { timeoutMs: 5_000, intervalMs: 50, what: "lookups again" },
    );
    expect(requests).toHaveLength(2);
  });
});
