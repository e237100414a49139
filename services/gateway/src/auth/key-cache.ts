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
  }

  /** Revoked itself, or scoped to a workspace that was deleted. */
  isRevoked(p: Pick<Principal, "keyId" | "workspaceId">): boolean {
    return this.tombstoned(`key:${p.keyId}`) || (p.workspaceId !== null && this.tombstoned(`ws:${p.workspaceId}`));
  }

  revoke(keyId: string): void {
    for (const h of this.hashesOfKey.get(keyId) ?? []) this.byHash.delete(h);
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
