import { describe, expect, it } from "vitest";
import { asciiReplyText } from "./reply-text.ts";

describe("asciiReplyText", () => {
  it("keeps printable ASCII, tab and space; anything else becomes ?", () => {
    expect(asciiReplyText("Error: duplicate \ufffd\ufffd parameter")).toBe("Error: duplicate ?? parameter");
    expect(asciiReplyText("été\t~ ok")).toBe("?t?\t~ ok");
    expect(asciiReplyText("5.1.1 No such mailbox here")).toBe("5.1.1 No such mailbox here");
  });
});
