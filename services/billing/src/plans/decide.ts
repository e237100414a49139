import { DEFAULT_LIMITS_AGGREGATE, type BillingEvent, type PlanLimits } from "@mam/contracts/billing-events.ts";
import type { EventDraft } from "@mam/service-kit/commands.ts";

/** A tenant's plan as billing's read model holds it; null: on no plan yet. */
export interface TenantPlanState {
  planId: string;
  limits: PlanLimits;
  version: number;
}

/** Put the tenant on a plan (`onlyIfNone`: unless it is on one already, as for a new tenant). */
export interface SetPlan {
  tenantId: string;
  plan: { id: string; limits: PlanLimits };
  onlyIfNone: boolean;
}

const sameLimits = (a: PlanLimits, b: PlanLimits) => a.inboxes === b.inboxes && a.emailsPerMonth === b.emailsPerMonth && a.domains === b.domains;

/** One TenantPlanChanged when the plan or its limits differ from what the tenant is on; none otherwise. */
export function decideSetPlan(cmd: SetPlan, state: TenantPlanState | null, version = state?.version ?? 0): EventDraft<BillingEvent>[] {
  if (state && cmd.onlyIfNone) return [];
  if (state && state.planId === cmd.plan.id && sameLimits(state.limits, cmd.plan.limits)) return [];
  return [
    {
      event: { type: "TenantPlanChanged", schemaVersion: 1, data: { tenantId: cmd.tenantId, planId: cmd.plan.id, limits: { ...cmd.plan.limits } } },
      tenantId: cmd.tenantId,
      workspaceId: null,
      aggregateId: cmd.tenantId,
      aggregateVersion: version + 1,
    },
  ];
}

/** The default plan's limits as last announced; null: never announced. */
export interface DefaultLimitsState {
  planId: string | null;
  limits: PlanLimits | null;
  version: number;
}

/**
 * One DefaultLimitsSet when the default plan (or its limits) differs from the last announced;
 * `plan` null: no plans configured (announced only once something was announced before, or
 * to say so at first start).
 */
export function decideDefaultLimits(plan: { id: string; limits: PlanLimits } | null, state: DefaultLimitsState | null): EventDraft<BillingEvent>[] {
  const planId = plan?.id ?? null;
  const limits = plan ? { ...plan.limits } : null;
  if (state && state.planId === planId && (state.limits === null || limits === null ? state.limits === limits : sameLimits(state.limits, limits))) return [];
  return [
    {
      event: { type: "DefaultLimitsSet", schemaVersion: 1, data: { planId, limits } },
      tenantId: null,
      workspaceId: null,
      aggregateId: DEFAULT_LIMITS_AGGREGATE,
      aggregateVersion: (state?.version ?? 0) + 1,
    },
  ];
}
