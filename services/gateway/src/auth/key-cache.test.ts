import { describe, expect, it } from "vitest";
import { KeyCache, SEEN_FOR_MS } from "./key-cache.ts";

const p = (keyId: string) => ({ keyId, kind: "workspace" as const, tenantId: null, workspaceId: null, inboxId: null });
const K1 = "0190a1a2-0000-7000-8000-000000000001";

describe("KeyCache", () => {
  it("expires entries after the TTL", () => {
    let now = 0;
    const c = new KeyCache(1000, () => now);
    c.set("h", p(K1));
    expect(c.get("h")?.keyId).toBe(K1);
    now = 1001;
    expect(c.get("h")).toBeUndefined();
  });
  it("evicts on revocation and refuses to cache a revoked key again", () => {
    const c = new KeyCache(60_000, () => 0);
    c.set("h", p(K1));
    c.revoke(K1);
    expect(c.get("h")).toBeUndefined();
    expect(c.seen("h")).toBe(false);
    c.set("h", p(K1));
    expect(c.get("h")).toBeUndefined();
    expect(c.isRevoked(p(K1))).toBe(true);
  });
  it("a deleted workspace takes all its keys with it", () => {
    const c = new KeyCache(60_000, () => 0);
    const W = "0190a1a2-0000-7000-8000-0000000000aa";
    c.set("h1", { ...p(K1), workspaceId: W });
    c.revokeWorkspace(W);
    expect(c.get("h1")).toBeUndefined();
    const K2 = "0190a1a2-0000-7000-8000-000000000002";
    c.set("h2", { ...p(K2), workspaceId: W });
    expect(c.get("h2")).toBeUndefined();
  });
  it("remembers for a day that a key resolved, past its entry's expiry and a clear, until told to forget", () => {
    let now = 0;
    const c = new KeyCache(1000, () => now);
    expect(c.seen("h")).toBe(false);
    c.set("h", p(K1));
    now = 5000;
    c.clear();
    expect(c.get("h")).toBeUndefined();
    expect(c.seen("h")).toBe(true);
    c.forget("h");
    expect(c.seen("h")).toBe(false);
    c.set("h", p(K1));
    now += SEEN_FOR_MS;
    expect(c.seen("h")).toBe(false);
  });
});
