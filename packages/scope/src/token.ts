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

/** How many tokens a signer and a verifier each keep at most (see mint and verify). */
const REMEMBERED = 4096;

/** Mints short-lived Ed25519-signed scope tokens. Only the gateway holds one. */
export class ScopeSigner {
  private readonly key: KeyObject;
  /** This second's tokens by their claims (see mint). */
  private minted = new Map<string, string>();
  private mintedIn = 0;
  constructor(
    privateKeyPem: string,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.key = createPrivateKey(privateKeyPem);
  }

  /**
   * `aud`: the service called first, then any it may ask on the caller's behalf (see ScopeAudience).
   * Claims carry whole seconds and Ed25519 signs deterministically, so the same claims within
   * one second make the same token, byte for byte: it is made once and handed out again.
   */
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
    const json = JSON.stringify(claims);
    if (iat !== this.mintedIn) {
      this.minted = new Map();
      this.mintedIn = iat;
    }
    const known = this.minted.get(json);
    if (known) return known;
    const body = b64(Buffer.from(json));
    const token = `${body}.${b64(sign(null, Buffer.from(body), this.key))}`;
    if (this.minted.size < REMEMBERED) this.minted.set(json, token);
    return token;
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

  /**
   * Tokens whose signature and shape passed, with their claims (frozen: every caller gets the
   * same object). A request's token is checked by each service it reaches, and a caller's
   * requests within a second carry the same one: the signature is checked once per token,
   * while expiry and audience are checked on every use.
   */
  private readonly verified = new Map<string, ScopeClaims>();
  private sweptAt = 0;

  verify(token: string | undefined | null, o: VerifyOptions = {}): ScopeClaims {
    if (!token) throw new ScopeError("missing");
    const now = Math.floor(this.nowMs() / 1000);
    const claims = this.verified.get(token) ?? this.remember(token, this.checked(token), now);
    if (claims.exp <= now || claims.exp - claims.iat > SCOPE_TOKEN_MAX_TTL_S) throw new ScopeError("expired");
    const [first, ...onBehalf] = claims.aud;
    if (first !== this.audience && !(o.forwarded && onBehalf.includes(this.audience))) throw new ScopeError("wrong_audience");
    return claims;
  }

  /** A token's claims, once its signature and shape are good. */
  private checked(token: string): ScopeClaims {
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
    try {
      return ScopeClaims.parse(JSON.parse(Buffer.from(body, "base64url").toString("utf8")));
    } catch {
      throw new ScopeError("malformed");
    }
  }

  /** Kept while it lives, at most REMEMBERED: when full, the expired go first, then the oldest. */
  private remember(token: string, claims: ScopeClaims, now: number): ScopeClaims {
    Object.freeze(claims.aud);
    if (Array.isArray(claims.workspaces)) Object.freeze(claims.workspaces);
    const frozen = Object.freeze(claims);
    if (frozen.exp <= now) return frozen;
    if (this.verified.size >= REMEMBERED) {
      // The expired go in one sweep a second at most; between sweeps, the oldest.
      if (now !== this.sweptAt) {
        this.sweptAt = now;
        for (const [t, c] of this.verified) if (c.exp <= now) this.verified.delete(t);
      }
      if (this.verified.size >= REMEMBERED) this.verified.delete(this.verified.keys().next().value!);
    }
    this.verified.set(token, frozen);
    return frozen;
  }
}
