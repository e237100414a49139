import { parseOrThrow } from "@mam/contracts/errors.ts";
import { ResolveKeyQuery, type KeySummary } from "@mam/contracts/identity-api.ts";
import type { Principal } from "@mam/contracts/keys.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { sameDigest } from "@mam/scope/key-hash.ts";
import type { IdentityContext } from "../context.ts";
import { NO_WORKSPACE } from "../db/schema.ts";
import { requireTenantKey, visibleWorkspace } from "./access.ts";
import { activeKeyByHash, activeKeysOfWorkspace, toKeySummary } from "./queries.ts";

export async function listWorkspaceKeys(ctx: IdentityContext, claims: ScopeClaims, workspaceId: unknown): Promise<{ keys: KeySummary[] }> {
  requireTenantKey(claims, "list keys");
  const w = await visibleWorkspace(ctx.db, claims, workspaceId);
  return { keys: (await activeKeysOfWorkspace(ctx.db, w.workspace_id)).map(toKeySummary) };
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
