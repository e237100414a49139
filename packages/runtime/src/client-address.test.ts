import { describe, expect, it } from "vitest";
import { addressBucket } from "./client-address.ts";

describe("addressBucket", () => {
  it("counts IPv4 by address, however it is written", () => {
    expect(addressBucket("203.0.113.7")).toBe("203.0.113.7");
    expect(addressBucket("::ffff:203.0.113.7")).toBe("203.0.113.7");
    expect(addressBucket("::FFFF:127.0.0.1")).toBe("127.0.0.1");
  });

  it("counts IPv6 by /64, so one subscriber's many addresses share one allowance", () => {
    const a = addressBucket("2001:db8:1:2:aaaa::1");
    expect(a).toBe("2001:db8:1:2::/64");
    expect(addressBucket("2001:0db8:0001:0002:ffff:ffff:ffff:ffff")).toBe(a);
    expect(addressBucket("2001:db8:1:2::")).toBe(a);
    expect(addressBucket("2001:db8:1:3::1")).not.toBe(a);
    expect(addressBucket("::1")).toBe("0:0:0:0::/64");
    expect(addressBucket("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
    expect(addressBucket("2001:db8::")).toBe("2001:db8:0:0::/64");
    expect(addressBucket("64:ff9b::192.0.2.33")).toBe("64:ff9b:0:0::/64");
  });

  it("leaves anything else as it is", () => {
    expect(addressBucket("unknown")).toBe("unknown");
  });
});
