import { AppError, parseOrThrow } from "@mam/contracts/errors.ts";
import { CreateWorkspaceBody, type Workspace } from "@mam/contracts/identity-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { IdentityContext } from "../context.ts";
import { slugify } from "../keys.ts";
import { activeKeysOfWorkspace, liveWorkspace, liveWorkspacesOfTenant, slugTaken, toWorkspace } from "../read/queries.ts";
import { requireTenantKey, visibleWorkspace } from "./access.ts";
import { execute, type CommandMeta } from "./append.ts";
import { revokeDraft } from "./issue-key.ts";

export async function createWorkspace(ctx: IdentityContext, claims: ScopeClaims, body: unknown, meta: CommandMeta): Promise<Workspace> {
  requireTenantKey(claims, "create workspaces");
  const input = parseOrThrow(CreateWorkspaceBody, body);
  const tenantId = claims.tenantId;
  const workspaceId = ctx.newId();
  return execute(
    ctx,
    tenantId,
    meta,
    async (tx) => {
      let slug: string;
      if (input.slug) {
        if (await slugTaken(tx, tenantId, input.slug)) {
          throw new AppError("CONFLICT", `A workspace with slug "${input.slug}" already exists`);
        }
        slug = input.slug;
      } else {
        const base = slugify(input.name);
        slug = base;
        for (let n = 2; await slugTaken(tx, tenantId, slug); n++) slug = `${base}-${n}`;
      }
      return [
        {
          event: { type: "WorkspaceCreated", schemaVersion: 1, data: { workspaceId, tenantId, name: input.name, slug, isDefault: false } },
          tenantId,
          workspaceId,
          aggregateId: workspaceId,
          aggregateVersion: 1,
        },
      ];
    },
    async (tx) => toWorkspace((await liveWorkspace(tx, workspaceId))!),
  );
}

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

/** Deleting a workspace revokes every key scoped to it, in the same command. */
export async function deleteWorkspace(
  ctx: IdentityContext,
  claims: ScopeClaims,
  id: unknown,
  meta: CommandMeta,
): Promise<{ deleted: true; id: string }> {
  requireTenantKey(claims, "delete workspaces");
  const tenantId = claims.tenantId;
  return execute(
    ctx,
    tenantId,
    meta,
    async (tx) => {
      const w = await visibleWorkspace(tx, claims, id);
      if (w.is_default) throw new AppError("CONFLICT", "The default workspace cannot be deleted");
      const keys = await activeKeysOfWorkspace(tx, w.workspace_id);
      return [
        {
          event: { type: "WorkspaceDeleted", schemaVersion: 1, data: { workspaceId: w.workspace_id, tenantId } },
          tenantId,
          workspaceId: w.workspace_id,
          aggregateId: w.workspace_id,
          aggregateVersion: 2,
        },
        ...keys.map((k) => revokeDraft(k, w.workspace_id, "workspace_deleted")),
      ];
    },
    async () => ({ deleted: true as const, id: String(id) }),
  );
}
