import { describe, expect, it } from "vitest";
import { generateScopeKeys } from "./key-material.ts";
import { type ScopeError, ScopeSigner, ScopeVerifier } from "./token.ts";

const keys = generateScopeKeys();
const p = {
  keyId: "0190a1a2-0000-7000-8000-000000000001",
  kind: "workspace" as const,
  tenantId: "0190a1a2-0000-7000-8000-000000000002",
  workspaceId: "0190a1a2-0000-7000-8000-000000000003",
  inboxId: null,
};
const reason = (f: () => unknown) => {
  try {
    f();
    return "ok";
  } catch (e) {
    return (e as ScopeError).reason;
  }
};

describe("scope tokens", () => {
  it("carry the principal's scope and verify", () => {
    const c = new ScopeVerifier(keys.publicKeyPem).verify(new ScopeSigner(keys.privateKeyPem).mint(p));
    expect(c).toMatchObject({ kid: p.keyId, kind: "workspace", tenantId: p.tenantId, workspaces: [p.workspaceId], inboxId: null });
    expect(c.exp - c.iat).toBeLessThanOrEqual(60);
  });
  it("never live longer than a minute, whatever is asked", () => {
    const c = new ScopeVerifier(keys.publicKeyPem).verify(new ScopeSigner(keys.privateKeyPem).mint(p, 3600));
    expect(c.exp - c.iat).toBe(60);
  });
  it("give tenant keys every workspace of the tenant", () => {
    const t = new ScopeSigner(keys.privateKeyPem).mint({ ...p, kind: "tenant", workspaceId: null });
    expect(new ScopeVerifier(keys.publicKeyPem).verify(t).workspaces).toBe("*");
  });
  it("are refused when missing, expired, forged or malformed", () => {
    const v = new ScopeVerifier(keys.publicKeyPem);
    const now = Date.now();
    expect(reason(() => v.verify(undefined))).toBe("missing");
    expect(reason(() => v.verify(new ScopeSigner(keys.privateKeyPem, () => now - 61_000).mint(p)))).toBe("expired");
    expect(reason(() => v.verify(new ScopeSigner(generateScopeKeys().privateKeyPem).mint(p)))).toBe("bad_signature");
    expect(reason(() => v.verify("not-a-token"))).toBe("malformed");
  });
});
