import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestDnsServer } from "@mam/testing/dns-server.ts";
import { cachedLookup } from "./cache.ts";
import { makeResolver } from "./verify.ts";

describe("cachedLookup", () => {
  const dns = new TestDnsServer();
  let servers = "";
  let clock = 0;
  beforeAll(async () => {
    servers = await dns.start();
    dns.set("sender.test", { TXT: ["v=spf1 -all"] });
    dns.failing.add("broken.test");
  });
  afterAll(() => dns.stop());

  const askedFor = (name: string) => dns.asked.filter((q) => q.endsWith(` ${name}`)).length;
  const lookup = () => cachedLookup(makeResolver(servers), { ttlMs: 1_000, negativeTtlMs: 500, now: () => clock });

  it("asks once for repeated and concurrent questions, again after the ttl", async () => {
    const ask = lookup();
    const answers = await Promise.all([ask("sender.test", "TXT"), ask("SENDER.test", "txt"), ask("sender.test", "TXT")]);
    expect(answers).toEqual(Array(3).fill([["v=spf1 -all"]]));
    expect(askedFor("sender.test")).toBe(1);
    clock += 999;
    await ask("sender.test", "TXT");
    expect(askedFor("sender.test")).toBe(1);
    clock += 2;
    await ask("sender.test", "TXT");
    expect(askedFor("sender.test")).toBe(2);
  });

  it("keeps 'no such name' for the shorter ttl and never keeps a server failure", async () => {
    const ask = lookup();
    await expect(ask("nobody.test", "TXT")).rejects.toMatchObject({ code: "ENOTFOUND" });
    await expect(ask("nobody.test", "TXT")).rejects.toMatchObject({ code: "ENOTFOUND" });
    expect(askedFor("nobody.test")).toBe(1);
    clock += 501;
    await expect(ask("nobody.test", "TXT")).rejects.toMatchObject({ code: "ENOTFOUND" });
    expect(askedFor("nobody.test")).toBe(2);

    await expect(ask("broken.test", "TXT")).rejects.toMatchObject({ code: "ESERVFAIL" });
    const before = askedFor("broken.test");
    await expect(ask("broken.test", "TXT")).rejects.toMatchObject({ code: "ESERVFAIL" });
    expect(askedFor("broken.test")).toBeGreaterThan(before);
  });
});
