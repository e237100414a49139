import { describe, expect, it } from "vitest";
import { relaySettings } from "./transports.ts";

describe("relay TLS settings", () => {
  it("verify: STARTTLS required and the certificate checked; implicit TLS for smtps://", () => {
    expect(relaySettings("smtp://relay.example:587", "verify", "h.example").options).toMatchObject({
      host: "relay.example",
      port: 587,
      secure: false,
      requireTLS: true,
      tls: { rejectUnauthorized: true },
      name: "h.example",
    });
    const implicit = relaySettings("smtps://relay.example", "verify", "h.example").options;
    expect(implicit).toMatchObject({ port: 465, secure: true, tls: { rejectUnauthorized: true } });
    expect(implicit).not.toHaveProperty("requireTLS", true);
  });

  it("opportunistic and none; tls= in the URL wins over the setting", () => {
    expect(relaySettings("smtp://r.example:25?tls=opportunistic", "verify", "h").options).toMatchObject({
      opportunisticTLS: true,
      tls: { rejectUnauthorized: false },
    });
    const plain = relaySettings("smtp://r.example:25", "none", "h");
    expect(plain.options).toMatchObject({ ignoreTLS: true });
    expect(plain.options).not.toHaveProperty("requireTLS");
    expect(plain.mode).toBe("none");
  });

  it("keeps the credentials out of the label, and refuses what cannot work without echoing the password", () => {
    const s = relaySettings("smtp://us%40er:p%3Ass@r.example:2525", "verify", "h");
    expect(s.options.auth).toEqual({ user: "us@er", pass: "p:ss" });
    expect(s.label).toBe("smtp://r.example:2525 (tls verify)");
    expect(s.secret).toBe("p:ss");
    for (const bad of ["smtps://u:secretpw@r.example?tls=none", "smtp://u:secretpw@r.example?tls=maybe", "http://u:secretpw@r.example"]) {
      expect(() => relaySettings(bad, "verify", "h")).toThrow();
      try {
        relaySettings(bad, "verify", "h");
      } catch (err) {
        expect((err as Error).message).not.toContain("secretpw");
      }
    }
  });
});
