import { describe, expect, it } from "vitest";
import { Lanes } from "./lanes.ts";
import { bytesOf } from "./dispatcher.ts";

const row = (webhook_id: string, n: number, tenant_id = "t") => ({ webhook_id, tenant_id, n });
/** A webhook of tenant `t` unless told. */
const ref = (webhook_id: string, tenant_id = "t") => ({ webhook_id, tenant_id });
const limits = { perEndpoint: 2, perTenant: 100, global: 3, aheadPerEndpoint: 4, heldPerTenant: 100, heldMax: 6, heldBytesMax: 1000 };
const size = () => 10;

function filled(lanes: Lanes<ReturnType<typeof row>>, webhook: string, count: number, tenant = "t") {
  let held = 0;
  for (let i = 0; i < count; i++) {
    if (!lanes.admit(ref(webhook, tenant), 10)) break;
    lanes.hold(row(webhook, i, tenant));
    held++;
  }
  return held;
}

describe("delivery lanes", () => {
  it("holds at most so many rows per webhook and in all", () => {
    const lanes = new Lanes<ReturnType<typeof row>>(limits, size);
    expect(filled(lanes, "slow", 1)).toBe(1);
    expect(lanes.busy()).toEqual([]);
    expect(filled(lanes, "slow", 10)).toBe(3);
    expect(lanes.busy()).toEqual(["slow"]);
    expect(filled(lanes, "fast", 10)).toBe(2);
    expect(lanes.room()).toBe(0);
    expect(lanes.admit(ref("other"), 10)).toBe(false);
  });

  it("holds no more bytes than its budget, but always one row, however large", () => {
    const lanes = new Lanes<ReturnType<typeof row>>({ ...limits, heldBytesMax: 100 }, size);
    expect(lanes.admit(ref("a"), 5000)).toBe(true);
    expect(lanes.admit(ref("b"), 1)).toBe(false);
    lanes.drop("a", 5000);
    expect([lanes.admit(ref("b"), 60), lanes.admit(ref("c"), 40), lanes.admit(ref("d"), 1)]).toEqual([true, true, false]);
  });

  it("runs at most the per-webhook cap of one webhook, and the global cap in all, taking webhooks in turn", () => {
    const lanes = new Lanes<ReturnType<typeof row>>({ ...limits, heldMax: 20 }, size);
    filled(lanes, "slow", 4);
    filled(lanes, "fast", 4);
    const first = lanes.next();
    expect(first.map((r) => r.webhook_id)).toEqual(["slow", "fast", "slow"]);
    expect(lanes.inFlight).toBe(3);
    expect(lanes.next()).toEqual([]);
    // The slow one is at its cap: a freed slot goes to the other.
    const end = (id: string) => {
      lanes.answered(id);
      lanes.drop(id, 10);
    };
    end("fast");
    expect(lanes.next().map((r) => r.webhook_id)).toEqual(["fast"]);
    end("slow");
    expect(lanes.next().map((r) => [r.webhook_id, r.n])).toEqual([["slow", 2]]);
  });

  it("holds one tenant's webhooks to the tenant's share of slots and rows, however many it has", () => {
    const lanes = new Lanes<ReturnType<typeof row>>({ ...limits, global: 6, heldMax: 40, aheadPerEndpoint: 10, perTenant: 2, heldPerTenant: 6 }, size);
    // Three slow webhooks of one tenant would take every slot (2 each); with its share, two in all.
    for (const w of ["dead1", "dead2", "dead3"]) expect(filled(lanes, w, 2, "greedy")).toBe(2);
    expect([lanes.admit(ref("dead4", "greedy"), 10), lanes.busyTenants(), lanes.isBusy("dead3")]).toEqual([false, ["greedy"], true]);
    filled(lanes, "fine", 2, "other");
    expect(lanes.busyTenants()).toEqual(["greedy"]);
    const running = lanes.next();
    expect(running.map((r) => [r.tenant_id, r.webhook_id])).toEqual([
      ["greedy", "dead1"],
      ["greedy", "dead2"],
      ["other", "fine"],
      ["other", "fine"],
    ]);
    // Two of the six slots stay free for other tenants, though the greedy one's rows wait.
    expect([lanes.inFlight, lanes.next()]).toEqual([4, []]);
    lanes.answered("dead1");
    lanes.drop("dead1", 10);
    expect(lanes.next().map((r) => r.webhook_id)).toEqual(["dead3"]);
  });

  it("frees a slot when a request is answered, the row when it is dropped, and hands back what waits", () => {
    const lanes = new Lanes<ReturnType<typeof row>>(limits, size);
    filled(lanes, "a", 3);
    expect(lanes.admit(ref("a"), 10)).toBe(true);
    lanes.drop("a", 10);
    const running = lanes.next();
    expect(running).toHaveLength(2);
    expect(lanes.takeWaiting().map((r) => r.n)).toEqual([2]);
    for (const r of running) lanes.answered(r.webhook_id);
    // Answered, not yet recorded: the rows are still held.
    expect([lanes.room(), lanes.inFlight]).toEqual([4, 0]);
    for (const r of running) lanes.drop(r.webhook_id, 10);
    expect([lanes.room(), lanes.inFlight, lanes.busy()]).toEqual([6, 0, []]);
  });
});

describe("a held row's size", () => {
  it("is its body's UTF-8 bytes, as Postgres's octet_length measures the rows a poll leases: dropped as admitted, whatever the characters", () => {
    const lanes = new Lanes<{ webhook_id: string; tenant_id: string }>({ ...limits, heldBytesMax: 20 }, () => 0);
    const body = "😀é a";
    expect(bytesOf({ body })).toBe(8);
    // Admitted with the size the poll reads (octet_length), dropped with bytesOf: the budget comes back whole.
    for (let round = 0; round < 3; round++) {
      expect(lanes.admit({ webhook_id: "w", tenant_id: "t" }, 8)).toBe(true);
      lanes.drop("w", bytesOf({ body }));
    }
    expect([lanes.admit({ webhook_id: "w", tenant_id: "t" }, 8), lanes.admit({ webhook_id: "x", tenant_id: "t" }, 12)]).toEqual([true, true]);
    expect(lanes.admit({ webhook_id: "y", tenant_id: "t" }, 1)).toBe(false);
  });
});
