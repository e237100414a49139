import { describe, expect, it } from "vitest";
import { ConnectionAdmission } from "./admission.ts";

describe("ConnectionAdmission", () => {
  const peer = (remoteAddress = "192.0.2.1") => ({ remoteAddress });

  it("admits up to the cap per address; the closes of refused connections free nothing", () => {
    const a = new ConnectionAdmission(2);
    const open = [peer(), peer()];
    for (const p of open) expect(a.admit(p)).toBeNull();
    const refused = [peer(), peer(), peer()];
    for (const p of refused) expect(a.admit(p)).toBe("address");
    for (const p of refused) a.release(p);
    expect(a.openFrom("192.0.2.1")).toBe(2);
    expect(a.admit(peer())).toBe("address");
    expect(a.admit(peer("192.0.2.2"))).toBeNull();
  });

  it("a closed admitted connection frees its slot once, however often its close is reported", () => {
    const a = new ConnectionAdmission(2);
    const [p, q] = [peer(), peer()];
    a.admit(p);
    a.admit(q);
    a.release(p);
    a.release(p);
    expect(a.openFrom("192.0.2.1")).toBe(1);
    expect(a.admit(peer())).toBeNull();
    expect(a.admit(peer())).toBe("address");
  });

  it("admits up to the cap in all, whatever the address; refusals free nothing, a close frees one", () => {
    const a = new ConnectionAdmission(2, 3);
    const open = [peer("192.0.2.1"), peer("192.0.2.2"), peer("192.0.2.3")];
    for (const p of open) expect(a.admit(p)).toBeNull();
    const refused = [peer("192.0.2.4"), peer("192.0.2.1")];
    for (const p of refused) expect(a.admit(p)).toBe("total");
    for (const p of refused) a.release(p);
    expect(a.open).toBe(3);
    a.release(open[0]!);
    expect(a.admit(peer("192.0.2.4"))).toBeNull();
    expect(a.admit(peer("192.0.2.5"))).toBe("total");
  });

  it("counts an IPv6 client by its /64, and IPv4 written as IPv6 as IPv4", () => {
    const a = new ConnectionAdmission(2);
    expect(a.admit(peer("2001:db8:1:2::1"))).toBeNull();
    expect(a.admit(peer("2001:db8:1:2:ffff::9"))).toBeNull();
    expect(a.admit(peer("2001:db8:1:2::abcd"))).toBe("address");
    expect(a.admit(peer("2001:db8:1:3::1"))).toBeNull();
    expect(a.admit(peer("::ffff:192.0.2.1"))).toBeNull();
    expect(a.admit(peer("192.0.2.1"))).toBeNull();
    expect(a.admit(peer("192.0.2.1"))).toBe("address");
  });
});
