import { describe, expect, it } from "vitest";
import { referencesOf } from "./replies.ts";

describe("a reply's References", () => {
  const parent = (references: string[], in_reply_to: string | null = null) => ({ references, in_reply_to, message_id_header: "<parent@x>" });

  it("are the parent's References then its Message-ID", () => {
    expect(referencesOf(parent(["<root@x>", "<mid@x>"], "<mid@x>"))).toEqual(["<root@x>", "<mid@x>", "<parent@x>"]);
    expect(referencesOf(parent([]))).toEqual(["<parent@x>"]);
  });

  it("take the parent's In-Reply-To when it has no References (one id only)", () => {
    expect(referencesOf(parent([], "<grand@x>"))).toEqual(["<grand@x>", "<parent@x>"]);
    expect(referencesOf(parent([], "<a@x> <b@x>"))).toEqual(["<parent@x>"]);
  });

  it("keep the thread's first id and the latest ones when the chain is too long", () => {
    const long = Array.from({ length: 60 }, (_, i) => `<m${i}@x>`);
    const refs = referencesOf(parent(long));
    expect(refs).toHaveLength(50);
    expect(refs[0]).toBe("<m0@x>");
    expect(refs.slice(-2)).toEqual(["<m59@x>", "<parent@x>"]);
  });
});
