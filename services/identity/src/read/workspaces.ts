import type { Kysely } from "kysely";
import { sql } from "kysely";
import { AppError } from "@mam/contracts/errors.ts";
import type { Workspace } from "@mam/contracts/identity-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { cursorKeys, keyInstant, pageOf, paginationOf, pastKeys, type PageRequest } from "@mam/service-kit/keyset.ts";
import type { IdentityContext } from "../context.ts";
import type { IdentityDb } from "../db/schema.ts";
import { visibleWorkspace } from "./access.ts";
import { toWorkspace } from "./queries.ts";

const LIST = "workspaces";

/** The tenant's live workspaces the scope sees; scope is the query's, whatever a cursor says. */
function scoped(db: Kysely<IdentityDb>, tenantId: string, scope: "*" | readonly string[]) {
  let q = db.selectFrom("workspaces").where("tenant_id", "=", tenantId).where("deleted_at", "is", null);
  if (scope !== "*") q = q.where("workspace_id", "in", scope.length ? scope : ["00000000-0000-0000-0000-000000000000"]);
  return q;
}

/** One page (and one row more) in `(created_at, workspace_id)` order, served by `workspaces_tenant_created`. */
export function workspacePageQuery(db: Kysely<IdentityDb>, tenantId: string, scope: "*" | readonly string[], req: PageRequest) {
  const after = cursorKeys(LIST, req);
  let q = scoped(db, tenantId, scope).selectAll().select(keyInstant("created_at").as("key_at"));
  q = after ? q.where(pastKeys("created_at", "workspace_id", after)) : q.offset(req.offset);
  return q
    .orderBy("created_at")
    .orderBy("workspace_id")
    .limit(req.limit + 1);
}

/** A tenant key sees every workspace of its tenant; a workspace or inbox key sees its own. */
export async function listWorkspaces(
  ctx: IdentityContext,
  claims: ScopeClaims,
  req: PageRequest,
): Promise<{ workspaces: Workspace[]; pagination: ReturnType<typeof paginationOf> }> {
  if (claims.kind === "super_admin" || !claims.tenantId) {
    throw new AppError("FORBIDDEN", "The operator key manages tenants only");
  }
  const [rows, total] = await Promise.all([
    workspacePageQuery(ctx.db, claims.tenantId, claims.workspaces, req).execute(),
    scoped(ctx.db, claims.tenantId, claims.workspaces).select(sql<string>`count(*)`.as("n")).executeTakeFirstOrThrow(),
  ]);
  const page = pageOf(LIST, rows, req.limit, (r) => r.workspace_id);
  return { workspaces: page.rows.map(toWorkspace), pagination: paginationOf(req, Number(total.n), page.nextCursor) };
}

export async function getWorkspace(ctx: IdentityContext, claims: ScopeClaims, id: unknown): Promise<Workspace> {
  return toWorkspace(await visibleWorkspace(ctx.db, claims, id));
}
