import { sql, type Kysely, type RawBuilder } from "kysely";
import { AppError } from "@mam/contracts/errors.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { MailboxDb } from "../db/schema.ts";

/**
 * What the mailbox view may read, resolved once per request into the shape its indexes
 * serve: one inbox (an `ak_` key, or `inboxId`), one workspace (a `wk_` key), or the tenant
 * (a `tk_` key, every workspace or a list of them).
 */
export type ViewScope =
  | { kind: "inbox"; workspaceId: string; inboxId: string }
  | { kind: "workspace"; workspaceId: string }
  | { kind: "tenant"; tenantId: string; workspaces: readonly string[] | "*" };

/** The caller's scope, or null when it holds nothing (an inbox out of scope or deleted: an empty view, as before). */
export async function viewScope(db: Kysely<MailboxDb>, claims: ScopeClaims, inboxId: string | undefined): Promise<ViewScope | null> {
  if (claims.kind === "super_admin" || !claims.tenantId) throw new AppError("FORBIDDEN", "The operator key manages tenants only");
  const tenantId = claims.tenantId;
  if (claims.workspaces !== "*" && !claims.workspaces.length) return null;
  const only = claims.inboxId ?? inboxId;
  if (claims.inboxId && inboxId && claims.inboxId !== inboxId) return null;
  if (only) {
    let q = db.selectFrom("inboxes").select("workspace_id").where("tenant_id", "=", tenantId).where("inbox_id", "=", only).where("deleted_at", "is", null);
    if (claims.workspaces !== "*") q = q.where("workspace_id", "in", claims.workspaces);
    const inbox = await q.executeTakeFirst();
    return inbox ? { kind: "inbox", workspaceId: inbox.workspace_id, inboxId: only } : null;
  }
  if (claims.workspaces !== "*" && claims.workspaces.length === 1) return { kind: "workspace", workspaceId: claims.workspaces[0]! };
  return { kind: "tenant", tenantId, workspaces: claims.workspaces };
}

/** The scope as a condition on a table with workspace_id, inbox_id and tenant_id columns. */
export function inViewScope(table: string, s: ViewScope): RawBuilder<boolean> {
  const col = (c: string) => sql.ref(`${table}.${c}`);
  switch (s.kind) {
    case "inbox":
      return sql<boolean>`${col("workspace_id")} = ${s.workspaceId} and ${col("inbox_id")} = ${s.inboxId}`;
    case "workspace":
      return sql<boolean>`${col("workspace_id")} = ${s.workspaceId}`;
    case "tenant":
      return s.workspaces === "*"
        ? sql<boolean>`${col("tenant_id")} = ${s.tenantId}`
        : // The tenant's index in order, the list a filter: an index per workspace gives each one's rows in order, not the list's together.
          sql<boolean>`${col("tenant_id")} = ${s.tenantId} and array_position(${s.workspaces}::uuid[], ${col("workspace_id")}) is not null`;
    default: {
      const unreachable: never = s;
      throw new Error(`unknown scope ${String(unreachable)}`);
    }
  }
}
