import type { Metrics, MetricsQuery } from "@mam/contracts/billing-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { BillingContext } from "../context.ts";
import { cumBefore, type CountKind, type ResourceKind } from "./counters.ts";
import { decideScope, type Known, type MetricsScope } from "./scope.ts";
import { resolveWindow } from "./window.ts";

const COUNTS: CountKind[] = ["sent", "received", "bounced"];

/**
 * `GET /v1/metrics`: the scope from the key's claims, then two index lookups per kind and
 * scope row (the workspace's or the inbox's; a tenant's is the sum over its workspaces),
 * whatever the window's length.
 */
export async function getMetrics(ctx: BillingContext, claims: ScopeClaims, q: MetricsQuery): Promise<Metrics> {
  const window = resolveWindow(q, ctx.clock());
  const scope = decideScope(claims, q, await lookUp(ctx, q));
  const { db } = ctx;
  const workspaces = scope.workspaceId
    ? [scope.workspaceId]
    : (await db.selectFrom("metric_workspaces").select("workspace_id").where("tenant_id", "=", scope.tenantId).execute()).map((r) => r.workspace_id);
  const countRows = scope.inboxId ? [scope.inboxId] : workspaces;
  const sum = async (ids: string[], f: (id: string) => Promise<number>) => (await Promise.all(ids.map(f))).reduce((a, b) => a + b, 0);
  const count = (kind: CountKind) => sum(countRows, async (id) => (await cumBefore(db, id, kind, window.to)) - (await cumBefore(db, id, kind, window.from)));
  const held = (kind: ResourceKind) => sum(workspaces, (id) => cumBefore(db, id, kind));
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
