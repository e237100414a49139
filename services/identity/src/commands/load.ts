import type { Kysely } from "kysely";
import type { KeyKind } from "@mam/contracts/keys.ts";
import { NO_WORKSPACE, type IdentityDb } from "../db/schema.ts";
import {
  activeKeysOfWorkspace,
  activeTenantKeys,
  keyOfWorkspace,
  liveWorkspace,
  tenantById,
  type KeyRow,
  type TenantRow,
  type WorkspaceRow,
} from "../read/queries.ts";
import type { IdentityState, KeyFacts, WorkspaceFacts } from "./decisions/state.ts";

/** The facts of a read-model row, in the shape `evolve` folds events into. */
export function workspaceFacts(r: WorkspaceRow): WorkspaceFacts {
  return { workspaceId: r.workspace_id, tenantId: r.tenant_id, slug: r.slug, isDefault: r.is_default, deleted: r.deleted_at !== null };
}

export function keyFacts(r: KeyRow): KeyFacts {
  return {
    keyId: r.key_id,
    kind: r.kind as KeyKind,
    tenantId: r.tenant_id,
    workspaceId: r.workspace_id === NO_WORKSPACE ? null : r.workspace_id,
    inboxId: r.inbox_id,
    keyHash: r.key_hash,
    revoked: r.revoked_at !== null,
  };
}

export const stateOf = (workspaces: WorkspaceRow[], keys: KeyRow[], tenants: TenantRow[] = []): IdentityState => ({
  tenants: tenants.map((t) => ({ tenantId: t.tenant_id })),
  workspaces: workspaces.map(workspaceFacts),
  keys: keys.map(keyFacts),
});

const present = <T>(x: T | undefined): T[] => (x === undefined ? [] : [x]);

/**
 * One live workspace (none if it is deleted or never was), and the keys of it the
 * decision needs: its active keys, or the one key it is about.
 */
export async function loadWorkspace(tx: Kysely<IdentityDb>, workspaceId: string, keys: "none" | "active" | { keyId: string }): Promise<IdentityState> {
  const w = await liveWorkspace(tx, workspaceId);
  if (!w || keys === "none") return stateOf(present(w), []);
  if (keys === "active") return stateOf([w], await activeKeysOfWorkspace(tx, workspaceId));
  return stateOf([w], present(await keyOfWorkspace(tx, workspaceId, keys.keyId)));
}

/**
 * A tenant (none if it never was) and the tk_ keys the decision needs: its live ones, or
 * the one key it is about, live or not (another kind's, or another tenant's, is loaded
 * too: the decision says it is not found).
 */
export async function loadTenant(tx: Kysely<IdentityDb>, tenantId: string, keys: "active" | { keyId: string }): Promise<IdentityState> {
  const t = await tenantById(tx, tenantId);
  if (!t) return stateOf([], []);
  if (keys === "active") return stateOf([], await activeTenantKeys(tx, tenantId), [t]);
  return stateOf([], present(await keyOfWorkspace(tx, NO_WORKSPACE, keys.keyId)), [t]);
}
