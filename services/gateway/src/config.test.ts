import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.ts";

describe("gateway abuse-limit settings", () => {
  it("derive their defaults from the limits they refine", () => {
    const c = loadConfig({ RATE_LIMIT_MAX: "100", LARGE_BODIES_IN_FLIGHT: "3" });
    expect([c.TENANT_RATE_LIMIT_MAX, c.UNAUTHENTICATED_RATE_LIMIT_MAX, c.LARGE_BODIES_PER_TENANT, c.TRUST_PROXY]).toEqual([400, 60, 1, false]);
    expect(loadConfig({}).LARGE_BODIES_PER_TENANT).toBe(4);
    expect(loadConfig({ TENANT_RATE_LIMIT_MAX: "7" }).TENANT_RATE_LIMIT_MAX).toBe(7);
  });

  it("refuse a tenant share of large bodies above the whole", () => {
    expect(() => loadConfig({ LARGE_BODIES_IN_FLIGHT: "4", LARGE_BODIES_PER_TENANT: "5" })).toThrow(
      /LARGE_BODIES_PER_TENANT: must be at most LARGE_BODIES_IN_FLIGHT/,
    );
  });

  it("trust a hop count or named proxies, never any proxy at all", () => {
    expect(loadConfig({ TRUST_PROXY: "2" }).TRUST_PROXY).toBe(2);
    expect(loadConfig({ TRUST_PROXY: "loopback, 10.0.0.0/8, fd00::/8" }).TRUST_PROXY).toEqual(["loopback", "10.0.0.0/8", "fd00::/8"]);
    expect(() => loadConfig({ TRUST_PROXY: "true" })).toThrow(/TRUST_PROXY: must be a hop count/);
    expect(() => loadConfig({ TRUST_PROXY: "loopback, proxy.internal" })).toThrow(/TRUST_PROXY: not an address.*proxy\.internal/);
  });
});
