import { AppError } from "@mam/contracts/errors.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { slugify } from "@mam/contracts/slug.ts";
import { keyRevoked, type Draft } from "./drafts.ts";
import type { IdentityState } from "./state.ts";
import { workspaceSeenBy } from "./visibility.ts";

export interface CreateWorkspace {
  type: "CreateWorkspace";
  tenantId: string;
  workspaceId: string;
  name: string;
  /** Asked for explicitly: taken is a refusal. Without one, a free slug is derived from the name. */
  slug: string | null;
}

export interface DeleteWorkspace {
  type: "DeleteWorkspace";
  claims: ScopeClaims;
  workspaceId: string;
}

export type WorkspaceCommand = CreateWorkspace | DeleteWorkspace;

export function decideWorkspace(command: WorkspaceCommand, state: IdentityState): Draft[] {
  switch (command.type) {
    case "CreateWorkspace":
      return createWorkspace(command, state);
    case "DeleteWorkspace":
      return deleteWorkspace(command, state);
    default: {
      const unreachable: never = command;
      throw new Error(`unhandled workspace command ${(unreachable as WorkspaceCommand).type}`);
    }
  }
}

function createWorkspace(c: CreateWorkspace, state: IdentityState): Draft[] {
  const taken = new Set(state.workspaces.filter((w) => w.tenantId === c.tenantId && !w.deleted).map((w) => w.slug));
  if (c.slug && taken.has(c.slug)) throw new AppError("CONFLICT", `A workspace with slug "${c.slug}" already exists`);
  const slug = c.slug ?? freeSlug(slugify(c.name), taken);
  return [
    {
      event: { type: "WorkspaceCreated", schemaVersion: 1, data: { workspaceId: c.workspaceId, tenantId: c.tenantId, name: c.name, slug, isDefault: false } },
      tenantId: c.tenantId,
      workspaceId: c.workspaceId,
      aggregateId: c.workspaceId,
      aggregateVersion: 1,
    },
  ];
}

/** "acme-corp", else "acme-corp-2", "acme-corp-3", ...: the first one free in the tenant. */
function freeSlug(base: string, taken: ReadonlySet<string>): string {
  let slug = base;
  for (let n = 2; taken.has(slug); n++) slug = `${base}-${n}`;
  return slug;
}

/** Deleting a workspace revokes every key scoped to it, in the same command. */
function deleteWorkspace(c: DeleteWorkspace, state: IdentityState): Draft[] {
  const w = workspaceSeenBy(state, c.claims, c.workspaceId);
  if (w.isDefault) throw new AppError("CONFLICT", "The default workspace cannot be deleted");
  const keys = state.keys.filter((k) => k.workspaceId === w.workspaceId && !k.revoked);
  return [
    {
      event: { type: "WorkspaceDeleted", schemaVersion: 1, data: { workspaceId: w.workspaceId, tenantId: w.tenantId } },
      tenantId: w.tenantId,
      workspaceId: w.workspaceId,
      aggregateId: w.workspaceId,
      aggregateVersion: 2,
    },
    ...keys.map((k) => keyRevoked(k, "workspace_deleted")),
  ];
}
