import { AppError } from "@mam/contracts/errors.ts";
import type { Tenant } from "@mam/contracts/identity-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { IdentityContext } from "../context.ts";
import { tenantById, toTenant } from "./queries.ts";

/** The caller's own tenant: what the mailbox needs to derive default usernames. */
export async function getOwnTenant(ctx: IdentityContext, claims: ScopeClaims): Promise<Tenant & { defaultWorkspaceId: string }> {
  const t = claims.tenantId ? await tenantById(ctx.db, claims.tenantId) : undefined;
  if (!t) throw new AppError("NOT_FOUND", "Tenant not found");
  return { ...toTenant(t), defaultWorkspaceId: t.default_workspace_id };
}
