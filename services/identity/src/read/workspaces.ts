import { AppError } from "@mam/contracts/errors.ts";
import type { Workspace } from "@mam/contracts/identity-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { IdentityContext } from "../context.ts";
import { visibleWorkspace } from "./access.ts";
import { liveWorkspacesOfTenant, toWorkspace } from "./queries.ts";

/** A tenant key sees every workspace of its tenant; a workspace or inbox key sees its own. */
export async function listWorkspaces(ctx: IdentityContext, claims: ScopeClaims): Promise<{ workspaces: Workspace[] }> {
  if (claims.kind === "super_admin" || !claims.tenantId) {
    throw new AppError("FORBIDDEN", "The operator key manages tenants only");
  }
  const rows = await liveWorkspacesOfTenant(ctx.db, claims.tenantId);
  const scope = claims.workspaces;
  return { workspaces: rows.filter((r) => scope === "*" || scope.includes(r.workspace_id)).map(toWorkspace) };
}

export async function getWorkspace(ctx: IdentityContext, claims: ScopeClaims, id: unknown): Promise<Workspace> {
  return toWorkspace(await visibleWorkspace(ctx.db, claims, id));
}
