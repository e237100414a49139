import { describe, expect, it } from "vitest";
import { dedupeKeyOf, type Delivery } from "./ingest.ts";

describe("dedupeKeyOf", () => {
  const base: Delivery = { mailFrom: "partner@example.com", recipients: ["a@agents.test", "b@agents.test"], returnPaths: [], contentHash: "11".repeat(32) };

  it("the same delivery again (a resend after a lost 250) has the same key, recipients in any order or case", () => {
    expect(dedupeKeyOf({ ...base, recipients: ["B@agents.test", "a@agents.test"] })).toBe(dedupeKeyOf(base));
  });

  it("other content, another sender, other recipients or return paths: another key", () => {
    const key = dedupeKeyOf(base);
    for (const other of [
      { ...base, contentHash: "22".repeat(32) },
      { ...base, mailFrom: "forger@evil.example" },
      { ...base, mailFrom: "" },
      { ...base, recipients: ["a@agents.test"] },
      { ...base, returnPaths: ["bounces+abcdefghijklmnop@agents.test"] },
    ]) {
      expect(dedupeKeyOf(other)).not.toBe(key);
    }
  });

  it("fields cannot be shifted into one another", () => {
    expect(dedupeKeyOf({ ...base, mailFrom: "x", recipients: ["y"], returnPaths: ["z"] })).not.toBe(
      dedupeKeyOf({ ...base, mailFrom: "x\u0000y", recipients: [], returnPaths: ["z"] }),
    );
    expect(dedupeKeyOf({ ...base, recipients: ["a,b"] })).not.toBe(dedupeKeyOf({ ...base, recipients: ["a", "b"] }));
  });
});
