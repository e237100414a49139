import type { ScopeClaims } from "@mam/contracts/scope.ts";

/** Where a resource lives: every workspace-scoped row knows both. */
export interface Placement {
  tenantId: string;
  workspaceId: string;
}

/** True when the token may see resources of this workspace. Super admins see no workspace data. */
export function seesWorkspace(c: ScopeClaims, at: Placement): boolean {
  if (c.kind === "super_admin" || c.tenantId !== at.tenantId) return false;
  return c.workspaces === "*" || c.workspaces.includes(at.workspaceId);
}
