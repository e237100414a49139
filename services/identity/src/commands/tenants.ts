import { AppError, parseOrThrow } from "@mam/contracts/errors.ts";
import { CreateTenantBody, type IssuedKey, type Tenant, type Workspace } from "@mam/contracts/identity-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { IdentityContext } from "../context.ts";
import { NO_WORKSPACE } from "../db/schema.ts";
import { keyOfWorkspace, liveWorkspace, tenantById, toKeySummary, toWorkspace } from "../read/queries.ts";
import { execute, type CommandMeta } from "./append.ts";
import { newKey } from "./issue-key.ts";

export const DEFAULT_WORKSPACE = { name: "Default", slug: "default" } as const;

/** Operator only: a tenant, its Default workspace and its tk_ key, shown this once. */
export async function createTenant(
  ctx: IdentityContext,
  claims: ScopeClaims,
  body: unknown,
  meta: CommandMeta,
): Promise<{ tenant: Tenant; workspace: Workspace; key: IssuedKey }> {
  if (claims.kind !== "super_admin") throw new AppError("FORBIDDEN", "Only the operator's sa_ key can create tenants");
  const input = parseOrThrow(CreateTenantBody, body);
  const tenantId = ctx.newId();
  const workspaceId = ctx.newId();
  const key = newKey(ctx, "tenant", { tenantId, workspaceId: null }, "Tenant master key");
  return execute(
    ctx,
    tenantId,
    meta,
    async () => [
      {
        event: { type: "TenantCreated", schemaVersion: 1, data: { tenantId, name: input.name, defaultWorkspaceId: workspaceId } },
        tenantId,
        workspaceId: null,
        aggregateId: tenantId,
        aggregateVersion: 1,
      },
      {
        event: {
          type: "WorkspaceCreated",
          schemaVersion: 1,
          data: { workspaceId, tenantId, name: DEFAULT_WORKSPACE.name, slug: DEFAULT_WORKSPACE.slug, isDefault: true },
        },
        tenantId,
        workspaceId,
        aggregateId: workspaceId,
        aggregateVersion: 1,
      },
      key.draft,
    ],
    async (tx) => {
      const t = (await tenantById(tx, tenantId))!;
      const w = (await liveWorkspace(tx, workspaceId))!;
      const k = (await keyOfWorkspace(tx, NO_WORKSPACE, key.keyId))!;
      return {
        tenant: { id: t.tenant_id, name: t.name, createdAt: new Date(t.created_at).toISOString() },
        workspace: toWorkspace(w),
        key: { ...toKeySummary(k), key: key.plaintext },
      };
    },
  );
}

/** The caller's own tenant: what the mailbox needs to derive default usernames. */
export async function getOwnTenant(ctx: IdentityContext, claims: ScopeClaims): Promise<Tenant & { defaultWorkspaceId: string }> {
  const t = claims.tenantId ? await tenantById(ctx.db, claims.tenantId) : undefined;
  if (!t) throw new AppError("NOT_FOUND", "Tenant not found");
  return { id: t.tenant_id, name: t.name, createdAt: new Date(t.created_at).toISOString(), defaultWorkspaceId: t.default_workspace_id };
}
