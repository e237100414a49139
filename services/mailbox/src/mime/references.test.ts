import { describe, expect, it } from "vitest";
import { parseMail } from "./parse.ts";

describe("a received message's References", () => {
  it("keep the thread's first id and the latest when there are more than 50", async () => {
    const ids = Array.from({ length: 60 }, (_, i) => `<m${i}@x>`);
    const raw = Buffer.from(`From: a@example.org\r\nTo: b@example.org\r\nSubject: deep\r\nReferences: ${ids.join(" ")}\r\n\r\nhi\r\n`);
    const refs = (await parseMail(raw, "a@example.org")).references;
    expect(refs).toHaveLength(50);
    expect(refs[0]).toBe("<m0@x>");
    expect(refs.at(-1)).toBe("<m59@x>");
  });
});
