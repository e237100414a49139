import { describe, expect, it } from "vitest";
import { ConnectionAdmission } from "./admission.ts";

describe("ConnectionAdmission", () => {
  const peer = (remoteAddress = "192.0.2.1") => ({ remoteAddress });

  it("admits up to the cap per address; the closes of refused connections free nothing", () => {
    const a = new ConnectionAdmission(2);
    const open = [peer(), peer()];
    for (const p of open) expect(a.admit(p)).toBe(true);
    const refused = [peer(), peer(), peer()];
    for (const p of refused) expect(a.admit(p)).toBe(false);
    for (const p of refused) a.release(p);
    expect(a.openFrom("192.0.2.1")).toBe(2);
    expect(a.admit(peer())).toBe(false);
    expect(a.admit(peer("192.0.2.2"))).toBe(true);
  });

  it("a closed admitted connection frees its slot once, however often its close is reported", () => {
    const a = new ConnectionAdmission(2);
    const [p, q] = [peer(), peer()];
    a.admit(p);
    a.admit(q);
    a.release(p);
    a.release(p);
    expect(a.openFrom("192.0.2.1")).toBe(1);
    expect(a.admit(peer())).toBe(true);
    expect(a.admit(peer())).toBe(false);
  });
});
