import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import type { Principal } from "@mam/contracts/keys.ts";
import { SCOPE_TOKEN_MAX_TTL_S, ScopeClaims, type ScopeAudience } from "@mam/contracts/scope.ts";

export type ScopeFailure = "missing" | "malformed" | "bad_signature" | "expired" | "wrong_audience";

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

  /** `aud`: the service called first, then any it may ask on the caller's behalf (see ScopeAudience). */
  mint(p: Principal, aud: ScopeAudience, ttlSeconds = 30): string {
    const iat = Math.floor(this.nowMs() / 1000);
    const claims: ScopeClaims = {
      v: 1,
      aud: [...aud],
      kid: p.keyId,
      kind: p.kind,
      tenantId: p.tenantId,
      workspaces: p.kind === "super_admin" ? [] : p.workspaceId ? [p.workspaceId] : "*",
      inboxId: p.inboxId,
      iat,
      exp: iat + Math.min(ttlSeconds, SCOPE_TOKEN_MAX_TTL_S),
    };
    const body = b64(Buffer.from(JSON.stringify(claims)));
    return `${body}.${b64(sign(null, Buffer.from(body), this.key))}`;
  }
}

export interface VerifyOptions {
  /**
   * The request is one this service serves to another service asking on a caller's
   * behalf: a token minted for that service, naming this one after it, is accepted too.
   */
  forwarded?: boolean;
}

/**
 * Checks a token's signature, shape, expiry and audience. Every service holds one, with
 * the public key only, for itself: a token minted for another service is refused.
 */
export class ScopeVerifier {
  private readonly key: KeyObject;
  constructor(
    publicKeyPem: string,
    readonly audience: string,
    private readonly nowMs: () => number = Date.now,
  ) {
    // createPublicKey would derive one from a private key too: a verifier must never hold that.
    if (publicKeyPem.includes("PRIVATE KEY")) throw new Error("a scope verifier takes the public key only");
    this.key = createPublicKey(publicKeyPem);
  }

  verify(token: string | undefined | null, o: VerifyOptions = {}): ScopeClaims {
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
    const [first, ...onBehalf] = claims.aud;
    if (first !== this.audience && !(o.forwarded && onBehalf.includes(this.audience))) throw new ScopeError("wrong_audience");
    return claims;
  }
}
