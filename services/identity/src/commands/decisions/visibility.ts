import { notFound } from "@mam/contracts/errors.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { seesWorkspace } from "@mam/scope/access.ts";
import type { IdentityState, WorkspaceFacts } from "./state.ts";

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
