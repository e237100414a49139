import type { Metrics, MetricsQuery } from "@mam/contracts/billing-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { BillingContext } from "../context.ts";
import { cumBefore, tenantCumBefore, type CountKind, type Kind, type ResourceKind } from "./counters.ts";
import { decideScope, type Known, type MetricsScope } from "./scope.ts";
import { resolveWindow } from "./window.ts";

const COUNTS: CountKind[] = ["sent", "received", "bounced"];

/**
 * `GET /v1/metrics`: the scope from the key's claims, then two index lookups per kind on the
 * scope's row (the workspace's or the inbox's; a tenant's: one query summing its workspaces'
 * rows, an index lookup each), whatever the window's length.
 */
export async function getMetrics(ctx: BillingContext, claims: ScopeClaims, q: MetricsQuery): Promise<Metrics> {
  const window = resolveWindow(q, ctx.clock());
  const scope = decideScope(claims, q, await lookUp(ctx, q));
  const { db } = ctx;
  // An inbox or a workspace: its own rows; the whole tenant: one query over its workspaces' rows.
  const row = scope.inboxId ?? scope.workspaceId;
  const cum = (kind: Kind, before?: Date) => (row ? cumBefore(db, row, kind, before) : tenantCumBefore(db, scope.tenantId, kind, before));
  const count = async (kind: CountKind) => (await cum(kind, window.to)) - (await cum(kind, window.from));
  const held = (kind: ResourceKind) => (scope.workspaceId ? cumBefore(db, scope.workspaceId, kind) : tenantCumBefore(db, scope.tenantId, kind));
  const [sent, received, bounced] = await Promise.all(COUNTS.map(count));
  return {
    window: { from: window.from.toISOString(), to: window.to.toISOString() },
    scope,
    counts: { sent: sent!, received: received!, bounced: bounced! },
    resources: { inboxes: scope.inboxId ? await inboxHeld(ctx, scope) : await held("inboxes"), domains: await held("domains") },
  };
}

/** An inbox scope holds its inbox (1) until it is deleted. */
async function inboxHeld(ctx: BillingContext, scope: MetricsScope): Promise<number> {
  const row = await ctx.db.selectFrom("metric_inboxes").select("deleted").where("inbox_id", "=", scope.inboxId!).executeTakeFirst();
  return row?.deleted ? 0 : 1;
}

/** What the counters' directory knows of the workspace and inbox a query names. */
async function lookUp(ctx: BillingContext, q: MetricsQuery): Promise<Known> {
  const workspace = q.workspace
    ? await ctx.db.selectFrom("metric_workspaces").select("tenant_id").where("workspace_id", "=", q.workspace).executeTakeFirst()
    : undefined;
  const inbox = q.inbox
    ? await ctx.db.selectFrom("metric_inboxes").select(["tenant_id", "workspace_id"]).where("inbox_id", "=", q.inbox).executeTakeFirst()
    : undefined;
  return {
    workspace: workspace ? { tenantId: workspace.tenant_id } : null,
    inbox: inbox ? { tenantId: inbox.tenant_id, workspaceId: inbox.workspace_id } : null,
  };
}
