import { describe, expect, it } from "vitest";
import { cutUtf8 } from "./feed-messages.ts";

/** `head` as the store answers it: the first `max + 1` bytes of the body. */
const cut = (text: string, max: number) => {
  const all = Buffer.from(text, "utf8");
  const r = cutUtf8(all.subarray(0, max + 1), all.length, max);
  return { text: r.bytes.toString("utf8"), bytes: r.bytes.length, cut: r.cut };
};

describe("a body cut for the feed", () => {
  it("is whole up to the cap, and not flagged", () => {
    expect(cut("héllo", 6)).toEqual({ text: "héllo", bytes: 6, cut: false });
    expect(cut("", 6)).toEqual({ text: "", bytes: 0, cut: false });
  });

  it("past the cap, ends before a character that would not fit whole", () => {
    // "é" is two bytes: a cap of 2 falls inside the first one after "a".
    expect(cut("aéé", 2)).toEqual({ text: "a", bytes: 1, cut: true });
    expect(cut("aéé", 3)).toEqual({ text: "aé", bytes: 3, cut: true });
    // Four-byte characters (an emoji) and three-byte ones (CJK).
    expect(cut("😀😀", 7)).toEqual({ text: "😀", bytes: 4, cut: true });
    expect(cut("日本語", 8)).toEqual({ text: "日本", bytes: 6, cut: true });
    expect(cut("abc", 2)).toEqual({ text: "ab", bytes: 2, cut: true });
  });

  it("never yields a replacement character, wherever the cap falls", () => {
    const text = "a😀é日b".repeat(20);
    for (let max = 0; max < Buffer.byteLength(text); max++) {
      const r = cut(text, max);
      expect(r.bytes).toBeLessThanOrEqual(max);
      expect(text.startsWith(r.text)).toBe(true);
      expect(r.bytes).toBeGreaterThan(max - 4);
    }
  });
});
