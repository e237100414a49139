import { parseOrThrow } from "@mam/contracts/errors.ts";
import { ResolveKeyQuery } from "@mam/contracts/identity-api.ts";
import type { Principal } from "@mam/contracts/keys.ts";
import type { IdentityContext } from "../context.ts";
import { NO_WORKSPACE } from "../db/schema.ts";
import { hashKey, sameDigest } from "@mam/scope/key-hash.ts";
import { activeKeyByHash, activeOperatorKeys } from "../read/queries.ts";
import { execute, type EventDraft } from "./append.ts";
import { newKey, revokeDraft } from "./issue-key.ts";

const SYSTEM = { actor: { type: "system" as const, id: "identity" }, requestId: "startup" };

/**
 * Makes the operator's key what the configuration says. With SUPER_ADMIN_KEY set, that
 * key (hashed) is the only valid sa_ key. Without it, a key is generated the first time
 * and its plaintext returned once for printing; later starts keep the stored one.
 */
export async function ensureOperatorKey(ctx: IdentityContext, configured: string | undefined): Promise<string | null> {
  let generated: string | null = null;
  await execute(
    ctx,
    null,
    SYSTEM,
    async (tx) => {
      const active = await activeOperatorKeys(tx);
      const at = { tenantId: null, workspaceId: null };
      if (!configured) {
        if (active.length) return [];
        const k = newKey(ctx, "super_admin", at, "Generated operator key");
        generated = k.plaintext;
        return [k.draft];
      }
      const wanted = hashKey(configured);
      const keep = active.find((k) => sameDigest(k.key_hash, wanted));
      const drafts: EventDraft[] = active.filter((k) => k !== keep).map((k) => revokeDraft(k, null, "revoked"));
      if (!keep) drafts.push(newKey(ctx, "super_admin", at, "SUPER_ADMIN_KEY", configured).draft);
      return drafts;
    },
    async () => undefined,
  );
  return generated;
}

/** Who holds this key hash, if anyone: what the gateway caches per key. */
export async function resolveKey(ctx: IdentityContext, body: unknown): Promise<{ principal: Principal | null }> {
  const { keyHash } = parseOrThrow(ResolveKeyQuery, body);
  const row = await activeKeyByHash(ctx.db, keyHash);
  if (!row || !sameDigest(row.key_hash, keyHash)) return { principal: null };
  return {
    principal: {
      keyId: row.key_id,
      kind: row.kind as Principal["kind"],
      tenantId: row.tenant_id,
      workspaceId: row.workspace_id === NO_WORKSPACE ? null : row.workspace_id,
      inboxId: row.inbox_id,
    },
  };
}
