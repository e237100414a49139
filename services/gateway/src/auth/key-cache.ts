import type { Principal } from "@mam/contracts/keys.ts";

interface Entry {
  principal: Principal;
  expiresAt: number;
}

/**
 * Resolved keys, by hash, for a short while. A revocation evicts the key at once and
 * leaves a tombstone, so an answer that was already on its way from identity when the
 * key was revoked cannot put it back.
 */
export class KeyCache {
  private readonly byHash = new Map<string, Entry>();
  private readonly hashesOfKey = new Map<string, Set<string>>();
  private readonly tombstones = new Map<string, number>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxEntries = 100_000,
  ) {}

  get(hash: string): Principal | undefined {
    const e = this.byHash.get(hash);
    if (!e) return undefined;
    if (e.expiresAt <= this.now() || this.isRevoked(e.principal.keyId)) {
      this.drop(hash, e.principal.keyId);
      return undefined;
    }
    return e.principal;
  }

  set(hash: string, principal: Principal): void {
    if (this.isRevoked(principal.keyId)) return;
    if (this.byHash.size >= this.maxEntries) this.clear();
    this.byHash.set(hash, { principal, expiresAt: this.now() + this.ttlMs });
    let set = this.hashesOfKey.get(principal.keyId);
    if (!set) this.hashesOfKey.set(principal.keyId, (set = new Set()));
    set.add(hash);
  }

  isRevoked(keyId: string): boolean {
    const until = this.tombstones.get(keyId);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.tombstones.delete(keyId);
    return false;
  }

  revoke(keyId: string): void {
    for (const h of this.hashesOfKey.get(keyId) ?? []) this.byHash.delete(h);
    this.hashesOfKey.delete(keyId);
    if (this.tombstones.size >= this.maxEntries) this.tombstones.clear();
    // Long enough to outlive any answer in flight and any cached copy elsewhere.
    this.tombstones.set(keyId, this.now() + Math.max(this.ttlMs * 4, 10 * 60_000));
  }

  /** After a lost connection we may have missed revocations: trust nothing cached. */
  clear(): void {
    this.byHash.clear();
    this.hashesOfKey.clear();
  }

  private drop(hash: string, keyId: string) {
    this.byHash.delete(hash);
    this.hashesOfKey.get(keyId)?.delete(hash);
  }
}
