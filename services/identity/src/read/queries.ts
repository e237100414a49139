import type { Kysely, Selectable } from "kysely";
import type { KeySummary, Tenant, Workspace } from "@mam/contracts/identity-api.ts";
import { NO_WORKSPACE, type ApiKeysTable, type IdentityDb, type TenantsTable, type WorkspacesTable } from "../db/schema.ts";

export type TenantRow = Selectable<TenantsTable>;
export type WorkspaceRow = Selectable<WorkspacesTable>;
export type KeyRow = Selectable<ApiKeysTable>;

const iso = (d: Date | string) => new Date(d).toISOString();

export function toTenant(r: TenantRow): Tenant {
  return { id: r.tenant_id, name: r.name, createdAt: iso(r.created_at) };
}

export function toWorkspace(r: WorkspaceRow): Workspace {
  return {
    id: r.workspace_id,
    tenantId: r.tenant_id,
    name: r.name,
    slug: r.slug,
    isDefault: r.is_default,
    // Sums of deltas applied in any order: below zero for a moment when a deletion is applied first.
    inboxCount: Math.max(0, r.inbox_count),
    domainCount: Math.max(0, r.domain_count),
    createdAt: iso(r.created_at),
  };
}

export function toKeySummary(r: KeyRow): KeySummary {
  return {
    id: r.key_id,
    prefix: r.prefix,
    name: r.name,
    workspaceId: r.workspace_id === NO_WORKSPACE ? null : r.workspace_id,
    createdAt: iso(r.created_at),
  };
}

export function liveWorkspace(db: Kysely<IdentityDb>, workspaceId: string): Promise<WorkspaceRow | undefined> {
  return db.selectFrom("workspaces").selectAll().where("workspace_id", "=", workspaceId).where("deleted_at", "is", null).executeTakeFirst();
}

/**
 * The tenant's live workspaces holding this slug or, with `numbered`, one of the derived
 * `slug-2`, `slug-3`, ...: all a new workspace's slug can collide with. Slugs are
 * lowercase letters, digits and hyphens, so the pattern needs no escaping.
 */
export function liveWorkspacesWithSlug(db: Kysely<IdentityDb>, tenantId: string, slug: string, numbered: boolean): Promise<WorkspaceRow[]> {
  return db
    .selectFrom("workspaces")
    .selectAll()
    .where("tenant_id", "=", tenantId)
    .where("deleted_at", "is", null)
    .where((eb) => (numbered ? eb.or([eb("slug", "=", slug), eb("slug", "like", `${slug}-%`)]) : eb("slug", "=", slug)))
    .execute();
}

export function activeKeysOfWorkspace(db: Kysely<IdentityDb>, workspaceId: string): Promise<KeyRow[]> {
  return db
    .selectFrom("api_keys")
    .selectAll()
    .where("workspace_id", "=", workspaceId)
    .where("revoked_at", "is", null)
    .orderBy("created_at")
    .orderBy("key_id")
    .execute();
}

export function keyOfWorkspace(db: Kysely<IdentityDb>, workspaceId: string, keyId: string): Promise<KeyRow | undefined> {
  return db.selectFrom("api_keys").selectAll().where("workspace_id", "=", workspaceId).where("key_id", "=", keyId).executeTakeFirst();
}

export function activeKeysOfInbox(db: Kysely<IdentityDb>, workspaceId: string, inboxId: string): Promise<KeyRow[]> {
  return db
    .selectFrom("api_keys")
    .selectAll()
    .where("workspace_id", "=", workspaceId)
    .where("inbox_id", "=", inboxId)
    .where("revoked_at", "is", null)
    .orderBy("created_at")
    .orderBy("key_id")
    .execute();
}

/**
 * The live key with this hash. A key of a deleted workspace is refused even if its own
 * revocation was never recorded (a crash between the events of one deletion).
 */
export function activeKeyByHash(db: Kysely<IdentityDb>, keyHash: string): Promise<KeyRow | undefined> {
  return db
    .selectFrom("api_keys as k")
    .leftJoin("workspaces as w", "w.workspace_id", "k.workspace_id")
    .selectAll("k")
    .where("k.key_hash", "=", keyHash)
    .where("k.revoked_at", "is", null)
    .where((eb) => eb.or([eb("k.workspace_id", "=", NO_WORKSPACE), eb.and([eb("w.workspace_id", "is not", null), eb("w.deleted_at", "is", null)])]))
    .executeTakeFirst();
}

/** A tenant's live tk_ keys (usually one). */
export function activeTenantKeys(db: Kysely<IdentityDb>, tenantId: string): Promise<KeyRow[]> {
  return db
    .selectFrom("api_keys")
    .selectAll()
    .where("workspace_id", "=", NO_WORKSPACE)
    .where("tenant_id", "=", tenantId)
    .where("kind", "=", "tenant")
    .where("revoked_at", "is", null)
    .orderBy("created_at")
    .orderBy("key_id")
    .execute();
}

export function activeOperatorKeys(db: Kysely<IdentityDb>): Promise<KeyRow[]> {
  return db
    .selectFrom("api_keys")
    .selectAll()
    .where("workspace_id", "=", NO_WORKSPACE)
    .where("kind", "=", "super_admin")
    .where("revoked_at", "is", null)
    .execute();
}

export function tenantById(db: Kysely<IdentityDb>, tenantId: string): Promise<TenantRow | undefined> {
  return db.selectFrom("tenants").selectAll().where("tenant_id", "=", tenantId).executeTakeFirst();
}
