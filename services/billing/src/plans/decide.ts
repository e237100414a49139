import type { BillingEvent, PlanLimits } from "@mam/contracts/billing-events.ts";
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
