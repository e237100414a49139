import type { Draft, NewKey } from "./drafts.ts";
import { keyIssued } from "./drafts.ts";
import type { IdentityState } from "./state.ts";

export const DEFAULT_WORKSPACE = { name: "Default", slug: "default" } as const;
/** The name of every tk_ key: the one a tenant is created with, and each that replaces it. */
export const TENANT_KEY_NAME = "Tenant master key";

/** Ids and key made by the caller: the decision only arranges them into events. */
export interface CreateTenant {
  type: "CreateTenant";
  tenantId: string;
  defaultWorkspaceId: string;
  name: string;
  key: NewKey;
}

export type TenantCommand = CreateTenant;

/** A tenant comes with its Default workspace and its tk_ key, in one command. */
export function decideTenant(command: TenantCommand, _state: IdentityState): Draft[] {
  switch (command.type) {
    case "CreateTenant": {
      const { tenantId, defaultWorkspaceId: workspaceId } = command;
      return [
        {
          event: { type: "TenantCreated", schemaVersion: 1, data: { tenantId, name: command.name, defaultWorkspaceId: workspaceId } },
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
        keyIssued(command.key, "tenant", { tenantId, workspaceId: null, inboxId: null }, TENANT_KEY_NAME),
      ];
    }
    default: {
      const unreachable: never = command.type;
      throw new Error(`unhandled tenant command ${String(unreachable)}`);
    }
  }
}
