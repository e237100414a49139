import { AppError, notFound } from "@mam/contracts/errors.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";

/** What a metrics answer covers: a tenant, one of its workspaces, or one inbox. */
export interface MetricsScope {
  tenantId: string;
  workspaceId: string | null;
  inboxId: string | null;
}

/** What the directory knows of the ids a query names (null: never heard of). */
export interface Known {
  workspace: { tenantId: string } | null;
  inbox: { tenantId: string; workspaceId: string } | null;
}

/**
 * The scope of a metrics query, decided from the key's verified claims, never from the query
 * alone: a tk_ key may narrow to a workspace and/or an inbox of its tenant; a wk_ key is pinned
 * to its workspace whatever `workspace` says (an `inbox` of it narrows); an ak_ key to its inbox.
 * Anything outside the key's scope is a 404, as if it did not exist; the operator's key is a 403.
 */
export function decideScope(claims: ScopeClaims, q: { workspace?: string; inbox?: string }, known: Known): MetricsScope {
  if (claims.kind === "super_admin" || !claims.tenantId) throw new AppError("FORBIDDEN", "Metrics are read with a tenant, workspace or inbox key");
  const tenantId = claims.tenantId;
  if (claims.kind === "inbox") {
    const inboxId = claims.inboxId;
    const workspaceId = claims.workspaces === "*" ? null : (claims.workspaces[0] ?? null);
    if (!inboxId || !workspaceId) throw new AppError("FORBIDDEN", "The key names no inbox");
    if (q.inbox !== undefined && q.inbox !== inboxId) throw notFound("Inbox");
    return { tenantId, workspaceId, inboxId };
  }
  if (claims.kind === "workspace") {
    const workspaceId = claims.workspaces === "*" ? null : (claims.workspaces[0] ?? null);
    if (!workspaceId) throw new AppError("FORBIDDEN", "The key names no workspace");
    if (q.inbox === undefined) return { tenantId, workspaceId, inboxId: null };
    if (known.inbox?.workspaceId !== workspaceId || known.inbox.tenantId !== tenantId) throw notFound("Inbox");
    return { tenantId, workspaceId, inboxId: q.inbox };
  }
  // A tenant key.
  if (q.workspace !== undefined && known.workspace?.tenantId !== tenantId) throw notFound("Workspace");
  if (q.inbox === undefined) return { tenantId, workspaceId: q.workspace ?? null, inboxId: null };
  const inbox = known.inbox;
  if (!inbox || inbox.tenantId !== tenantId || (q.workspace !== undefined && inbox.workspaceId !== q.workspace)) throw notFound("Inbox");
  return { tenantId, workspaceId: inbox.workspaceId, inboxId: q.inbox };
}
