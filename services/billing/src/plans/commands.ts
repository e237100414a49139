import type { Kysely } from "kysely";
import { BILLING_CONTEXT, type BillingEnvelope, type BillingEvent, type PlanLimits } from "@mam/contracts/billing-events.ts";
import { commandExecutor, type CommandMeta } from "@mam/service-kit/commands.ts";
import type { Sequenced } from "@mam/service-kit/event-sourcing.ts";
import type { BillingContext } from "../context.ts";
import type { BillingDb } from "../db/schema.ts";
import { decideDefaultLimits, decideSetPlan, type DefaultLimitsState, type SetPlan, type TenantPlanState } from "./decide.ts";
import { applyBillingEvents, PROJECTION } from "./projection.ts";

/** Billing's commands are serialised per tenant. */
export const execute = commandExecutor<BillingDb, BillingEvent>({
  context: BILLING_CONTEXT,
  projection: PROJECTION,
  apply: (tx, events) => applyBillingEvents(tx, events as unknown as Sequenced<BillingEnvelope>[]),
});

export async function tenantPlanOf(db: Kysely<BillingDb>, tenantId: string): Promise<TenantPlanState | null> {
  const row = await db.selectFrom("tenant_plans").select(["plan_id", "limits", "version"]).where("tenant_id", "=", tenantId).executeTakeFirst();
  return row ? { planId: row.plan_id, limits: row.limits, version: row.version } : null;
}

/**
 * The tenant aggregate's version: its plan (TenantPlanChanged) and its Stripe billing
 * (TenantBillingChanged) are events of one aggregate, the tenant.
 */
export async function tenantVersionOf(db: Kysely<BillingDb>, tenantId: string): Promise<number> {
  const [p, b] = await Promise.all([
    db.selectFrom("tenant_plans").select("version").where("tenant_id", "=", tenantId).executeTakeFirst(),
    db.selectFrom("tenant_billing").select("version").where("tenant_id", "=", tenantId).executeTakeFirst(),
  ]);
  return Math.max(p?.version ?? 0, b?.version ?? 0);
}

/** Puts a tenant on a plan; resolves with whether anything changed. */
export async function setPlan(ctx: BillingContext, cmd: SetPlan, meta: CommandMeta): Promise<boolean> {
  return execute(ctx, cmd.tenantId, meta, {
    load: async (tx) => ({ plan: await tenantPlanOf(tx, cmd.tenantId), version: await tenantVersionOf(tx, cmd.tenantId) }),
    decide: (state) => decideSetPlan(cmd, state.plan, state.version),
    answer: (_tx, _state, events) => Promise.resolve(events.length > 0),
  });
}

export async function defaultLimitsOf(db: Kysely<BillingDb>): Promise<DefaultLimitsState | null> {
  const row = await db.selectFrom("default_limits").select(["plan_id", "limits", "version"]).where("id", "=", 1).executeTakeFirst();
  return row ? { planId: row.plan_id, limits: row.limits, version: row.version } : null;
}

/** Announces the default plan's limits (null: no plans) unless they are the last announced; resolves with whether anything changed. */
export async function announceDefaultLimits(ctx: BillingContext, plan: { id: string; limits: PlanLimits } | null, meta: CommandMeta): Promise<boolean> {
  return execute(ctx, null, meta, {
    load: (tx) => defaultLimitsOf(tx),
    decide: (state) => decideDefaultLimits(plan, state),
    answer: (_tx, _state, events) => Promise.resolve(events.length > 0),
  });
}
