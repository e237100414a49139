import { parseOrThrow } from "@mam/contracts/errors.ts";
import { CreateWorkspaceBody, IdParam, type Workspace } from "@mam/contracts/identity-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { slugify } from "@mam/contracts/slug.ts";
import type { IdentityContext } from "../context.ts";
import { requireTenantKey } from "../read/access.ts";
import { liveWorkspace, liveWorkspacesWithSlug, toWorkspace } from "../read/queries.ts";
import { execute, type CommandMeta } from "./append.ts";
import { decideWorkspace, type CreateWorkspace, type DeleteWorkspace } from "./decisions/workspaces.ts";
import { loadWorkspace, stateOf } from "./load.ts";

export async function createWorkspace(ctx: IdentityContext, claims: ScopeClaims, body: unknown, meta: CommandMeta): Promise<Workspace> {
  requireTenantKey(claims, "create workspaces");
  const input = parseOrThrow(CreateWorkspaceBody, body);
  const command: CreateWorkspace = {
    type: "CreateWorkspace",
    tenantId: claims.tenantId,
    workspaceId: ctx.newId(),
    name: input.name,
    slug: input.slug ?? null,
  };
  return execute(ctx, command.tenantId, meta, {
    // Only the workspaces whose slug the new one could collide with.
    load: async (tx) => stateOf(await liveWorkspacesWithSlug(tx, command.tenantId, command.slug ?? slugify(command.name), command.slug === null), []),
    decide: (state) => decideWorkspace(command, state),
    answer: async (tx) => toWorkspace((await liveWorkspace(tx, command.workspaceId))!),
  });
}

/** Deleting a workspace revokes every key scoped to it, in the same command. */
export async function deleteWorkspace(ctx: IdentityContext, claims: ScopeClaims, id: unknown, meta: CommandMeta): Promise<{ deleted: true; id: string }> {
  requireTenantKey(claims, "delete workspaces");
  const command: DeleteWorkspace = { type: "DeleteWorkspace", claims, workspaceId: parseOrThrow(IdParam, id, "workspace id") };
  return execute(ctx, claims.tenantId, meta, {
    load: (tx) => loadWorkspace(tx, command.workspaceId, "active"),
    decide: (state) => decideWorkspace(command, state),
    answer: async () => ({ deleted: true as const, id: command.workspaceId }),
  });
}
