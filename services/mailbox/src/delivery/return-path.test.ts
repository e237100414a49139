import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { BOUNCE_TOKEN, returnPathToken } from "@mam/contracts/ingest.ts";
import { base32, ReturnPaths } from "./return-path.ts";

const paths = new ReturnPaths(Buffer.from("k".repeat(32)), "agents.test");

describe("return paths", () => {
  it("name the message, in the shape smtp-ingress reads, within a 64-character local part", () => {
    const id = randomUUID();
    const address = paths.address(id);
    const token = returnPathToken(address, "agents.test");
    expect(token).not.toBeNull();
    expect(token).toMatch(BOUNCE_TOKEN);
    expect(address.split("@")[0]!.length).toBeLessThanOrEqual(64);
    expect(paths.messageOf(token!)).toBe(id);
  });

  it("refuse a token made with another key, altered, cut short or padded", () => {
    const id = randomUUID();
    const token = paths.token(id);
    expect(new ReturnPaths(Buffer.from("x".repeat(32)), "agents.test").messageOf(token)).toBeNull();
    const flipped = token.slice(0, -3) + (token.at(-3) === "a" ? "b" : "a") + token.slice(-2);
    expect(paths.messageOf(flipped)).toBeNull();
    expect(paths.messageOf(token.slice(0, -1))).toBeNull();
    expect(paths.messageOf(`${token}aa`)).toBeNull();
    expect(paths.messageOf("not a token")).toBeNull();
  });

  it("encode base32 as RFC 4648 does, lower case and unpadded", () => {
    expect(base32(Buffer.from("foobar"))).toBe("mzxw6ytboi");
    expect(base32(Buffer.from("f"))).toBe("my");
  });
});
