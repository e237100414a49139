import { createPrivateKey, sign } from "node:crypto";
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
const signer = new ScopeSigner(keys.privateKeyPem);
const identity = new ScopeVerifier(keys.publicKeyPem, "identity");
const mailbox = new ScopeVerifier(keys.publicKeyPem, "mailbox");

describe("scope tokens", () => {
  it("carry the principal's scope and audience, and verify", () => {
    const c = identity.verify(signer.mint(p, ["identity"]));
    expect(c).toMatchObject({ aud: ["identity"], kid: p.keyId, kind: "workspace", tenantId: p.tenantId, workspaces: [p.workspaceId], inboxId: null });
    expect(c.exp - c.iat).toBeLessThanOrEqual(60);
  });
  it("never live longer than a minute, whatever is asked", () => {
    const c = identity.verify(signer.mint(p, ["identity"], 3600));
    expect(c.exp - c.iat).toBe(60);
  });
  it("give tenant keys every workspace of the tenant", () => {
    const t = signer.mint({ ...p, kind: "tenant", workspaceId: null }, ["identity"]);
    expect(identity.verify(t).workspaces).toBe("*");
  });
  it("are refused when missing, expired, forged or malformed", () => {
    const now = Date.now();
    expect(reason(() => identity.verify(undefined))).toBe("missing");
    expect(reason(() => identity.verify(new ScopeSigner(keys.privateKeyPem, () => now - 61_000).mint(p, ["identity"])))).toBe("expired");
    expect(reason(() => identity.verify(new ScopeSigner(generateScopeKeys().privateKeyPem).mint(p, ["identity"])))).toBe("bad_signature");
    expect(reason(() => identity.verify("not-a-token"))).toBe("malformed");
  });
});

describe("a scope token's audience", () => {
  it("is the service it was minted for: another service refuses it", () => {
    expect(reason(() => mailbox.verify(signer.mint(p, ["mailbox"])))).toBe("ok");
    expect(reason(() => identity.verify(signer.mint(p, ["mailbox"])))).toBe("wrong_audience");
    expect(reason(() => mailbox.verify(signer.mint(p, ["identity"])))).toBe("wrong_audience");
    expect(reason(() => identity.verify(signer.mint(p, ["mailbox"]), { forwarded: true }))).toBe("wrong_audience");
  });

  it("names after it a service the first may consult on the caller's behalf, good there for forwarded requests only", () => {
    const t = signer.mint(p, ["mailbox", "identity"]);
    expect(reason(() => mailbox.verify(t))).toBe("ok");
    expect(reason(() => identity.verify(t, { forwarded: true }))).toBe("ok");
    expect(reason(() => identity.verify(t))).toBe("wrong_audience");
    // The order is part of it: a token for identity that names the mailbox after it is not the mailbox's own.
    expect(reason(() => mailbox.verify(signer.mint(p, ["identity", "mailbox"])))).toBe("wrong_audience");
  });

  it("cannot be changed without breaking the signature", () => {
    const [body, sig] = signer.mint(p, ["mailbox"]).split(".") as [string, string];
    const claims = JSON.parse(Buffer.from(body, "base64url").toString());
    claims.aud = ["identity"];
    expect(reason(() => identity.verify(`${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${sig}`))).toBe("bad_signature");
  });

  it("is required: a token without one is malformed", () => {
    const body = Buffer.from(JSON.stringify({ v: 1, kid: p.keyId, kind: "tenant", tenantId: p.tenantId, workspaces: "*", inboxId: null, iat: 0, exp: 1 }));
    const b = body.toString("base64url");
    const token = `${b}.${sign(null, Buffer.from(b), createPrivateKey(keys.privateKeyPem)).toString("base64url")}`;
    expect(reason(() => identity.verify(token))).toBe("malformed");
  });
});

describe("a verifier", () => {
  it("holds a public key only: a private key is refused", () => {
    expect(() => new ScopeVerifier(keys.privateKeyPem, "identity")).toThrow(/public key only/);
  });
});

describe("tokens made and checked again", () => {
  it("the same claims within a second are the same token; the next second, a new one", () => {
    let now = 1_800_000_000_500;
    const clocked = new ScopeSigner(keys.privateKeyPem, () => now);
    const first = clocked.mint(p, ["mailbox"]);
    now += 400;
    expect(clocked.mint(p, ["mailbox"])).toBe(first);
    expect(clocked.mint(p, ["identity"])).not.toBe(first);
    expect(clocked.mint({ ...p, workspaceId: "0190a1a2-0000-7000-8000-000000000004" }, ["mailbox"])).not.toBe(first);
    now += 200;
    const next = clocked.mint(p, ["mailbox"]);
    expect(next).not.toBe(first);
    // A token handed out again is the one signing would give: another signer with the same key and clock makes it too.
    expect(new ScopeSigner(keys.privateKeyPem, () => now).mint(p, ["mailbox"])).toBe(next);
  });

  it("a token verified once is refused once it expires, and by another audience, as on first sight", () => {
    let now = Date.now();
    const verifier = new ScopeVerifier(keys.publicKeyPem, "mailbox", () => now);
    const token = signer.mint(p, ["mailbox", "identity"], 10);
    expect(verifier.verify(token).kid).toBe(p.keyId);
    expect(reason(() => verifier.verify(token))).toBe("ok");
    const forIdentity = new ScopeVerifier(keys.publicKeyPem, "identity", () => now);
    expect(forIdentity.verify(token, { forwarded: true }).kid).toBe(p.keyId);
    expect(reason(() => forIdentity.verify(token))).toBe("wrong_audience");
    now += 11_000;
    expect(reason(() => verifier.verify(token))).toBe("expired");
    expect(reason(() => forIdentity.verify(token, { forwarded: true }))).toBe("expired");
  });

  it("the claims a verifier hands out cannot be changed by one caller for the next", () => {
    const verifier = new ScopeVerifier(keys.publicKeyPem, "mailbox");
    const token = signer.mint(p, ["mailbox"]);
    const claims = verifier.verify(token);
    expect(() => {
      (claims.workspaces as string[]).push("0190a1a2-0000-7000-8000-000000000009");
    }).toThrow(TypeError);
    expect(() => {
      (claims as { tenantId: string | null }).tenantId = null;
    }).toThrow(TypeError);
    expect(verifier.verify(token).workspaces).toEqual([p.workspaceId]);
  });

  it("a forged token is refused every time, even beside a good one it copies", () => {
    const verifier = new ScopeVerifier(keys.publicKeyPem, "mailbox");
    const good = signer.mint(p, ["mailbox"]);
    verifier.verify(good);
    const [body, sig] = good.split(".") as [string, string];
    const other = Buffer.from(sig, "base64url");
    other[0]! ^= 1;
    for (let i = 0; i < 2; i++) expect(reason(() => verifier.verify(`${body}.${other.toString("base64url")}`))).toBe("bad_signature");
  });
});
