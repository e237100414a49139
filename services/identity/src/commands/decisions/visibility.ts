import { notFound } from "@mam/contracts/errors.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { seesWorkspace } from "@mam/scope/access.ts";
import type { IdentityState, TenantFacts, WorkspaceFacts } from "./state.ts";

/**
 * The live workspace, if the caller may see it. Anything else (another tenant's, another
 * workspace's, deleted, never existed) is the same 404, so a caller learns nothing of
 * workspaces it may not see.
 */
export function workspaceSeenBy(state: IdentityState, claims: ScopeClaims, workspaceId: string): WorkspaceFacts {
  const w = state.workspaces.find((x) => x.workspaceId === workspaceId && !x.deleted);
  if (!w || !seesWorkspace(claims, { tenantId: w.tenantId, workspaceId: w.workspaceId })) throw notFound("Workspace");
  return w;
}

/**
 * The tenant, if the caller may manage its tk_ keys: the operator sees every tenant, a tk_
 * key its own. Any other tenant, or one that never was, is the same 404.
 */
export function tenantSeenBy(state: IdentityState, claims: ScopeClaims, tenantId: string): TenantFacts {
  const t = state.tenants.find((x) => x.tenantId === tenantId);
  const sees = claims.kind === "super_admin" || (claims.kind === "tenant" && claims.tenantId === tenantId);
  if (!t || !sees) throw notFound("Tenant");
  return t;
}
