import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import type { Principal } from "@mam/contracts/keys.ts";
import { SCOPE_TOKEN_MAX_TTL_S, ScopeClaims } from "@mam/contracts/scope.ts";

export type ScopeFailure = "missing" | "malformed" | "bad_signature" | "expired";

export class ScopeError extends Error {
  override name = "ScopeError";
  constructor(readonly reason: ScopeFailure) {
    super(`scope token ${reason.replace("_", " ")}`);
  }
}

const b64 = (b: Buffer) => b.toString("base64url");

/** Mints short-lived Ed25519-signed scope tokens. Only the gateway holds one. */
export class ScopeSigner {
  private readonly key: KeyObject;
  constructor(
    privateKeyPem: string,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.key = createPrivateKey(privateKeyPem);
  }

  mint(p: Principal, ttlSeconds = 30, workspaces: "*" | string[] = p.workspaceId ? [p.workspaceId] : "*"): string {
    const iat = Math.floor(this.nowMs() / 1000);
    const claims: ScopeClaims = {
      v: 1,
      kid: p.keyId,
      kind: p.kind,
      tenantId: p.tenantId,
      workspaces: p.kind === "super_admin" ? [] : workspaces,
      inboxId: p.inboxId,
      iat,
      exp: iat + Math.min(ttlSeconds, SCOPE_TOKEN_MAX_TTL_S),
    };
    const body = b64(Buffer.from(JSON.stringify(claims)));
    return `${body}.${b64(sign(null, Buffer.from(body), this.key))}`;
  }
}

/** Checks a token's signature, shape and expiry. Every service holds one. */
export class ScopeVerifier {
  private readonly key: KeyObject;
  constructor(
    publicKeyPem: string,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.key = createPublicKey(publicKeyPem);
  }

  verify(token: string | undefined | null): ScopeClaims {
    if (!token) throw new ScopeError("missing");
    const parts = token.split(".");
    if (parts.length !== 2 || !parts[0] || !parts[1]) throw new ScopeError("malformed");
    const [body, sig] = parts as [string, string];
    let ok = false;
    try {
      ok = verify(null, Buffer.from(body), this.key, Buffer.from(sig, "base64url"));
    } catch {
      throw new ScopeError("malformed");
    }
    if (!ok) throw new ScopeError("bad_signature");
    let claims: ScopeClaims;
    try {
      claims = ScopeClaims.parse(JSON.parse(Buffer.from(body, "base64url").toString("utf8")));
    } catch {
      throw new ScopeError("malformed");
    }
    const now = Math.floor(this.nowMs() / 1000);
    if (claims.exp <= now || claims.exp - claims.iat > SCOPE_TOKEN_MAX_TTL_S) throw new ScopeError("expired");
    return claims;
  }
}
