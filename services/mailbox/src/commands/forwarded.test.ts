import { describe, expect, it } from "vitest";
import type { MessageRow } from "../read/messages.ts";
import { forwardedBodies, textOfHtml } from "./forwarded.ts";

describe("a forward's bodies", () => {
  const original = (o: { plain?: string; html?: string }) => {
    const blobs = new Map<string, Buffer>();
    if (o.plain !== undefined) blobs.set("p", Buffer.from(o.plain));
    if (o.html !== undefined) blobs.set("h", Buffer.from(o.html));
    const row = {
      from_name: "Ada",
      from_address: "ada@example.org",
      created_at: "2026-12-03T10:00:00.000Z",
      subject: "Report",
      to_addresses: ["me@agents.test"],
      plain_hash: o.plain !== undefined ? "p" : null,
      html_hash: o.html !== undefined ? "h" : null,
      preview: "(preview)",
    } as unknown as MessageRow;
    return { row, blobs };
  };

  it("quote an HTML-only original whole: its HTML in an HTML part, its text in the text part", () => {
    const long = `<html><head><style>p{color:red}</style></head><body>${"<p>Line &amp; more</p>".repeat(300)}<script>x()</script></body></html>`;
    const { row, blobs } = original({ html: long });
    const b = forwardedBodies(row, blobs, { plainBody: "FYI <see below>" });
    expect(b.text.startsWith("FYI <see below>\n\n---------- Forwarded message ---------\nFrom: Ada <ada@example.org>")).toBe(true);
    expect(b.text.split("Line & more")).toHaveLength(301);
    expect(b.text).not.toMatch(/color:red|x\(\)|<p>/);
    expect(b.html).toContain("<p>FYI &lt;see below&gt;</p>");
    expect(b.html).toContain("From: Ada &lt;ada@example.org&gt;");
    expect(b.html).toContain(long);
  });

  it("give the sender's HTML the original's text, escaped, when only the sender wrote HTML", () => {
    const { row, blobs } = original({ plain: "a < b" });
    const b = forwardedBodies(row, blobs, { htmlBody: "<b>see</b>" });
    expect(b.html).toMatch(/^<b>see<\/b><br><br><div>---------- Forwarded message ---------<br>/);
    expect(b.html).toContain("<pre>a &lt; b</pre>");
    expect(b.text).toContain("\na < b");
  });

  it("stay text only when neither side has HTML", () => {
    const { row, blobs } = original({ plain: "hello" });
    expect(forwardedBodies(row, blobs, {})).toEqual({ text: expect.stringMatching(/Forwarded message[\s\S]*\n\nhello$/) });
  });

  it("read an HTML body's text: breaks kept, tags and scripts gone, entities read", () => {
    expect(textOfHtml("<div>a<br>b</div><p>c &lt;d&gt; &amp; e&nbsp;f</p><script>alert(1)</script>")).toBe("a\nb\nc <d> & e f");
    expect(textOfHtml("<STYLE>x</STYLE>kept<br/>too")).toBe("kept\ntoo");
    // A character whose lower case is longer ("İ") moves nothing: the style is still dropped.
    expect(textOfHtml("İİİ<style>p{color:red}</style><p>Hello</p><SCRIPT>alert(1)</Script>after")).toBe("İİİHello\nafter");
  });

  it("read any markup in one pass: unclosed tags and scripts by the hundred thousand end the text, quickly", () => {
    expect(textOfHtml(`text${"<".repeat(400_000)}`)).toBe("text");
    expect(textOfHtml(`text${"<style".repeat(100_000)}`)).toBe("text");
    expect(textOfHtml(`${"<b>x</b>".repeat(100_000)}`)).toHaveLength(100_000);
    // (Quadratic work on these would take many minutes: the test's own timeout would end it.)
  });
});
