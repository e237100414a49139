import { describe, expect, it } from "vitest";
import { isSpecialUse } from "./special-use.ts";

describe("special-use addresses", () => {
  it("covers this host, private, shared, link-local, multicast and reserved space, in every spelling", () => {
    for (const ip of [
      "0.0.0.0",
      "10.2.3.4",
      "100.64.0.1",
      "127.0.0.1",
      "169.254.169.254",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "224.0.0.1",
      "255.255.255.255",
      "::",
      "::1",
      "fc00::1",
      "fd12:3456::1",
      "fe80::1",
      "ff02::1",
      "::ffff:127.0.0.1",
      "::ffff:10.0.0.1",
      "::ffff:7f00:1",
      "::ffff:a9fe:a9fe",
      "0:0:0:0:0:ffff:7f00:1",
      "::127.0.0.1",
      "64:ff9b::10.0.0.1",
      "2002:7f00:1::1",
      "2002:c0a8:101::",
      "2001:0:4136:e378:8000:63bf:3fff:fdd2",
      "192.88.99.1",
      "2001:2::1",
      "2001:10::1",
      "2001:2f:ffff::1",
      "2001:db8::1",
      "3fff:fff::1",
      "5f00::1",
      "not an address",
    ])
      expect(isSpecialUse(ip), ip).toBe(true);
  });

  it("lets public addresses through", () => {
    for (const ip of [
      "8.8.8.8",
      "172.32.0.1",
      "100.128.0.1",
      "2a00:1450:4001::1a",
      "::ffff:8.8.8.8",
      "64:ff9b::8.8.8.8",
      "2002:808:808::1",
      "2001:4860:4860::8888",
      "2001:30::1",
      "4000::1",
    ])
      expect(isSpecialUse(ip), ip).toBe(false);
  });
});
