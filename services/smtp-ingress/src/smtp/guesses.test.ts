import { describe, expect, it } from "vitest";
import { UnknownRecipientRate } from "./guesses.ts";

describe("UnknownRecipientRate", () => {
  const MINUTE = 60_000;
  const clock = () => {
    let t = 1_000_000;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  };

  it("an address is over once it named more than the limit within the window; other addresses are not", () => {
    const c = clock();
    const r = new UnknownRecipientRate(3, 10 * MINUTE, c.now);
    for (let i = 0; i < 3; i++) expect(r.note("192.0.2.1")).toBe(false);
    expect(r.over("192.0.2.1")).toBe(false);
    expect(r.note("192.0.2.1")).toBe(true);
    expect(r.over("192.0.2.1")).toBe(true);
    expect(r.over("192.0.2.2")).toBe(false);
    expect(r.note("192.0.2.2")).toBe(false);
  });

  it("counts nothing with no limit (0): nobody is ever over", () => {
    const r = new UnknownRecipientRate(0, 10 * MINUTE, clock().now);
    for (let i = 0; i < 1000; i++) expect(r.note("192.0.2.1")).toBe(false);
    expect(r.over("192.0.2.1")).toBe(false);
    expect(r.tracked).toBe(0);
  });

  it("counts an IPv6 /64 as one address, and IPv4 written as IPv6 as the IPv4 address", () => {
    const r = new UnknownRecipientRate(2, 10 * MINUTE, clock().now);
    r.note("2001:db8:1:2::1");
    r.note("2001:db8:1:2:ffff::9");
    expect(r.note("2001:db8:1:2:aaaa:bbbb:cccc:dddd")).toBe(true);
    expect(r.over("2001:db8:1:3::1")).toBe(false);
    r.note("::ffff:192.0.2.7");
    r.note("192.0.2.7");
    expect(r.over("192.0.2.7")).toBe(false);
    r.note("::ffff:192.0.2.7");
    expect(r.over("192.0.2.7")).toBe(true);
  });

  it("slides: the window before counts for the part of it still within the last window, then nothing", () => {
    const c = clock();
    const r = new UnknownRecipientRate(10, 10 * MINUTE, c.now);
    for (let i = 0; i < 11; i++) r.note("192.0.2.1");
    expect(r.over("192.0.2.1")).toBe(true);
    // Into the next window: 11 of the one before, weighted by what is left of it.
    c.advance(10 * MINUTE + MINUTE);
    expect(r.over("192.0.2.1")).toBe(false); // 11 × 0.9 = 9.9
    expect(r.note("192.0.2.1")).toBe(true); // 9.9 + 1
    c.advance(8 * MINUTE);
    expect(r.over("192.0.2.1")).toBe(false); // 11 × 0.1 + 1
    // Two windows of silence: nothing is left.
    c.advance(20 * MINUTE);
    for (let i = 0; i < 10; i++) expect(r.note("192.0.2.1")).toBe(false);
  });

  it("remembers at most maxTracked addresses, forgetting the one heard from longest ago; silent ones are dropped", () => {
    const c = clock();
    const r = new UnknownRecipientRate(1, 10 * MINUTE, c.now, 3);
    for (const a of ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) for (let i = 0; i < 2; i++) r.note(a);
    // .1 is heard from again: .2 is now the one heard from longest ago.
    r.note("192.0.2.1");
    r.note("192.0.2.4");
    expect(r.tracked).toBe(3);
    expect(r.over("192.0.2.2")).toBe(false);
    for (const a of ["192.0.2.1", "192.0.2.3"]) expect(r.over(a)).toBe(true);
    c.advance(25 * MINUTE);
    r.note("192.0.2.9");
    expect(r.tracked).toBe(1);
  });
});
