import { describe, expect, it } from "vitest";
import { hashKey, sameDigest } from "@mam/scope/key-hash.ts";
import { generateKey, shownPrefix, slugify } from "./keys.ts";

describe("slugify", () => {
  it.each([
    ["Acme Corp", "acme-corp"],
    ["  TalentHub  ", "talenthub"],
    ["Café Münster & Co.", "cafe-munster-co"],
    ["---", "workspace"],
    ["日本", "workspace"],
    ["a".repeat(80), "a".repeat(56)],
  ])("%s → %s", (name, slug) => expect(slugify(name)).toBe(slug));
});

describe("keys", () => {
  it("carry their prefix and 256 bits of randomness", () => {
    const k = generateKey("workspace");
    expect(k).toMatch(/^wk_[A-Za-z0-9_-]{43}$/);
    expect(generateKey("workspace")).not.toBe(k);
    expect(shownPrefix(k)).toBe(k.slice(0, 9));
  });
  it("compare digests in constant time and reject malformed ones", () => {
    const h = hashKey("tk_x");
    expect(sameDigest(h, hashKey("tk_x"))).toBe(true);
    expect(sameDigest(h, hashKey("tk_y"))).toBe(false);
    expect(sameDigest(h, "abcd")).toBe(false);
  });
});
