import type { Kysely } from "kysely";
import { AppError, notFound, parseOrThrow } from "@mam/contracts/errors.ts";
import { IdParam } from "@mam/contracts/identity-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { seesWorkspace } from "@mam/scope/access.ts";
import type { IdentityDb } from "../db/schema.ts";
import { liveWorkspace, type WorkspaceRow } from "./queries.ts";

/** Workspaces and keys are managed with the tenant's master key only. */
export function requireTenantKey(claims: ScopeClaims, what: string): asserts claims is ScopeClaims & { tenantId: string } {
  if (claims.kind !== "tenant" || !claims.tenantId) {
    throw new AppError("FORBIDDEN", `Only a tenant master key (tk_) can ${what}`);
  }
}

/**
 * The workspace, if the caller may see it. Anything else (another tenant's, another
 * workspace's, deleted, never existed) is the same 404. Commands decide the same against
 * their loaded state (commands/decisions/visibility.ts).
 */
export async function visibleWorkspace(db: Kysely<IdentityDb>, claims: ScopeClaims, rawId: unknown): Promise<WorkspaceRow> {
  const id = parseOrThrow(IdParam, rawId, "workspace id");
  const w = await liveWorkspace(db, id);
  if (!w || !seesWorkspace(claims, { tenantId: w.tenant_id, workspaceId: w.workspace_id })) throw notFound("Workspace");
  return w;
}
