import type { Principal } from "@mam/contracts/keys.ts";

interface Entry {
  principal: Principal;
  expiresAt: number;
}

/** How long a key that once resolved still counts as known to this gateway (see {@link KeyCache.seen}). */
export const SEEN_FOR_MS = 24 * 3_600_000;

/**
 * Resolved keys, by hash, for a short while. A revocation evicts the key at once and
 * leaves a tombstone, so an answer that was already on its way from identity when the
 * key was revoked cannot put it back.
 */
export class KeyCache {
  private readonly byHash = new Map<string, Entry>();
  private readonly hashesOfKey = new Map<string, Set<string>>();
  private readonly tombstones = new Map<string, number>();
  /** Hashes that resolved here once, until when: no principal, only a right to be looked up. */
  private readonly seenUntil = new Map<string, number>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxEntries = 100_000,
  ) {}

  /**
   * Whether this hash resolved here in the last day, though its cache entry may have
   * expired or been dropped. Such a key is looked up again even when its client address is
   * over the limit for unknown keys: it vouches for nothing (identity still decides), it
   * only keeps a known-good key from being locked out by someone else's guesses from the
   * same address. Survives {@link clear}: being looked up again is safe after missed events.
   */
  seen(hash: string): boolean {
    const until = this.seenUntil.get(hash);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.seenUntil.delete(hash);
    return false;
  }

  /** Identity no longer knows this key (revoked, deleted): it has no more right to a lookup than any guess. */
  forget(hash: string): void {
    this.seenUntil.delete(hash);
  }

  get(hash: string): Principal | undefined {
    const e = this.byHash.get(hash);
    if (!e) return undefined;
    if (e.expiresAt <= this.now() || this.isRevoked(e.principal)) {
      this.drop(hash, e.principal.keyId);
      return undefined;
    }
    return e.principal;
  }

  set(hash: string, principal: Principal): void {
    if (this.isRevoked(principal)) return;
    if (this.byHash.size >= this.maxEntries) this.clear();
    this.byHash.set(hash, { principal, expiresAt: this.now() + this.ttlMs });
    let set = this.hashesOfKey.get(principal.keyId);
    if (!set) this.hashesOfKey.set(principal.keyId, (set = new Set()));
    set.add(hash);
    if (this.seenUntil.size >= this.maxEntries) this.seenUntil.clear();
    this.seenUntil.set(hash, this.now() + SEEN_FOR_MS);
  }

  /** Revoked itself, or scoped to a workspace that was deleted. */
  isRevoked(p: Pick<Principal, "keyId" | "workspaceId">): boolean {
    return this.tombstoned(`key:${p.keyId}`) || (p.workspaceId !== null && this.tombstoned(`ws:${p.workspaceId}`));
  }

  revoke(keyId: string): void {
    for (const h of this.hashesOfKey.get(keyId) ?? []) {
      this.byHash.delete(h);
      this.seenUntil.delete(h);
    }
    this.hashesOfKey.delete(keyId);
    this.bury(`key:${keyId}`);
  }

  /** Every key of a deleted workspace, whether or not its own revocation has arrived yet. */
  revokeWorkspace(workspaceId: string): void {
    for (const e of this.byHash.values()) {
      if (e.principal.workspaceId === workspaceId) this.revoke(e.principal.keyId);
    }
    this.bury(`ws:${workspaceId}`);
  }

  private tombstoned(id: string): boolean {
    const until = this.tombstones.get(id);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.tombstones.delete(id);
    return false;
  }

  private bury(id: string): void {
    if (this.tombstones.size >= this.maxEntries) this.tombstones.clear();
    // Long enough to outlive any answer in flight and any cached copy elsewhere.
    this.tombstones.set(id, this.now() + Math.max(this.ttlMs * 4, 10 * 60_000));
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
