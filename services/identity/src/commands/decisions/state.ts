import type { IdentityEvent } from "@mam/contracts/identity-events.ts";
import type { KeyKind } from "@mam/contracts/keys.ts";

/** A workspace row of the read model, in the columns decisions look at. */
export interface WorkspaceFacts {
  workspaceId: string;
  tenantId: string;
  slug: string;
  isDefault: boolean;
  deleted: boolean;
}

/** A tenant the read model holds: the operator's key commands answer 404 for any other. */
export interface TenantFacts {
  tenantId: string;
}

/** An api_keys row, in the columns decisions look at. `workspaceId` is null for tenant and operator keys. */
export interface KeyFacts {
  keyId: string;
  kind: KeyKind;
  tenantId: string | null;
  workspaceId: string | null;
  inboxId: string | null;
  keyHash: string;
  revoked: boolean;
}

/**
 * What identity's decisions are made against. A command's `load` reads the slice of the
 * read model it needs into this shape; a test folds the events that happened into it
 * with `evolve`. Each decision looks up what it needs, so either serves.
 */
export interface IdentityState {
  tenants: readonly TenantFacts[];
  workspaces: readonly WorkspaceFacts[];
  keys: readonly KeyFacts[];
}

export const initial = (): IdentityState => ({ tenants: [], workspaces: [], keys: [] });

/** The read model's projection (projections/identity-read-model.ts), in memory: a repeated event changes nothing. */
export function evolve(state: IdentityState, event: IdentityEvent): IdentityState {
  switch (event.type) {
    case "TenantCreated": {
      const { tenantId } = event.data;
      if (state.tenants.some((t) => t.tenantId === tenantId)) return state;
      return { ...state, tenants: [...state.tenants, { tenantId }] };
    }
    case "WorkspaceCreated": {
      const d = event.data;
      if (state.workspaces.some((w) => w.workspaceId === d.workspaceId)) return state;
      const w: WorkspaceFacts = { workspaceId: d.workspaceId, tenantId: d.tenantId, slug: d.slug, isDefault: d.isDefault, deleted: false };
      return { ...state, workspaces: [...state.workspaces, w] };
    }
    case "WorkspaceDeleted":
      return { ...state, workspaces: state.workspaces.map((w) => (w.workspaceId === event.data.workspaceId ? { ...w, deleted: true } : w)) };
    case "KeyIssued": {
      const d = event.data;
      if (state.keys.some((k) => k.keyId === d.keyId)) return state;
      const k: KeyFacts = {
        keyId: d.keyId,
        kind: d.kind,
        tenantId: d.tenantId,
        workspaceId: d.workspaceId,
        inboxId: d.inboxId,
        keyHash: d.keyHash,
        revoked: false,
      };
      return { ...state, keys: [...state.keys, k] };
    }
    case "KeyRevoked":
      return { ...state, keys: state.keys.map((k) => (k.keyId === event.data.keyId ? { ...k, revoked: true } : k)) };
    default: {
      const unreachable: never = event;
      throw new Error(`unhandled identity event ${(unreachable as IdentityEvent).type}`);
    }
  }
}
