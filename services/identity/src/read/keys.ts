import { sql, type Kysely } from "kysely";
import { parseOrThrow } from "@mam/contracts/errors.ts";
import { ResolveKeyQuery, type KeySummary } from "@mam/contracts/identity-api.ts";
import type { Principal } from "@mam/contracts/keys.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { sameDigest } from "@mam/scope/key-hash.ts";
import { cursorKeys, keyInstant, pageOf, paginationOf, pastKeys, type PageRequest } from "@mam/service-kit/keyset.ts";
import type { IdentityContext } from "../context.ts";
import { NO_WORKSPACE, type IdentityDb } from "../db/schema.ts";
import { requireTenantKey, visibleWorkspace } from "./access.ts";
import { activeKeyByHash, toKeySummary } from "./queries.ts";

const listOf = (workspaceId: string) => `keys:${workspaceId}`;

const activeOf = (db: Kysely<IdentityDb>, workspaceId: string) =>
  db.selectFrom("api_keys").where("workspace_id", "=", workspaceId).where("revoked_at", "is", null);

/** One page (and one row more) of a workspace's live keys in `(created_at, key_id)` order, served by `api_keys_live_by_workspace`. */
export function keyPageQuery(db: Kysely<IdentityDb>, workspaceId: string, req: PageRequest) {
  const after = cursorKeys(listOf(workspaceId), req);
  let q = activeOf(db, workspaceId).selectAll().select(keyInstant("created_at").as("key_at"));
  q = after ? q.where(pastKeys("created_at", "key_id", after)) : q.offset(req.offset);
  return q
    .orderBy("created_at")
    .orderBy("key_id")
    .limit(req.limit + 1);
}

export async function listWorkspaceKeys(
  ctx: IdentityContext,
  claims: ScopeClaims,
  workspaceId: unknown,
  req: PageRequest,
): Promise<{ keys: KeySummary[]; pagination: ReturnType<typeof paginationOf> }> {
  requireTenantKey(claims, "list keys");
  const w = await visibleWorkspace(ctx.db, claims, workspaceId);
  const [rows, total] = await Promise.all([
    keyPageQuery(ctx.db, w.workspace_id, req).execute(),
    activeOf(ctx.db, w.workspace_id).select(sql<string>`count(*)`.as("n")).executeTakeFirstOrThrow(),
  ]);
  const page = pageOf(listOf(w.workspace_id), rows, req.limit, (r) => r.key_id);
  return { keys: page.rows.map(toKeySummary), pagination: paginationOf(req, Number(total.n), page.nextCursor) };
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
