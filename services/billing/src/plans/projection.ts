import type { Kysely } from "kysely";
import type { BillingEnvelope } from "@mam/contracts/billing-events.ts";
import { applyOnce, applyOnceMany, type Sequenced } from "@mam/service-kit/event-sourcing.ts";
import type { BillingDb } from "../db/schema.ts";

/** The read model of billing's own events (its checkpoint rows, and its durable consumer's name). */
export const PROJECTION = "billing-read-model";

/** Applies one consumed event, once. */
export function applyBillingEvent(tx: Kysely<BillingDb>, e: BillingEnvelope, streamSeq: number): Promise<boolean> {
  return applyOnce(tx, PROJECTION, e, streamSeq, () => evolve(tx, e));
}

/** A command's events, in order, each once. */
export function applyBillingEvents(tx: Kysely<BillingDb>, events: Sequenced<BillingEnvelope>[]): Promise<Sequenced<BillingEnvelope>[]> {
  return applyOnceMany(tx, PROJECTION, events, async (fresh) => {
    for (const { e } of fresh) await evolve(tx, e);
  });
}

async function evolve(tx: Kysely<BillingDb>, e: BillingEnvelope): Promise<void> {
  switch (e.type) {
    case "TenantPlanChanged": {
      const row = { plan_id: e.data.planId, limits: JSON.stringify(e.data.limits) as never, version: e.aggregateVersion, updated_at: new Date(e.occurredAt) };
      await tx
        .insertInto("tenant_plans")
        .values({ tenant_id: e.data.tenantId, ...row })
        .onConflict((oc) => oc.column("tenant_id").doUpdateSet(row).where("tenant_plans.version", "<", e.aggregateVersion))
        .execute();
      return;
    }
    case "DefaultLimitsSet": {
      const row = { plan_id: e.data.planId, limits: (e.data.limits ? JSON.stringify(e.data.limits) : null) as never, version: e.aggregateVersion };
      await tx
        .insertInto("default_limits")
        .values({ id: 1, ...row })
        .onConflict((oc) => oc.column("id").doUpdateSet(row).where("default_limits.version", "<", e.aggregateVersion))
        .execute();
      return;
    }
    case "TenantBillingChanged": {
      const d = e.data;
      const date = (v: string | null) => (v ? new Date(v) : null);
      const row = {
        status: d.status,
        customer_id: d.customerId,
        subscription_id: d.subscriptionId,
        period_start: date(d.periodStart),
        period_end: date(d.periodEnd),
        past_due_since: date(d.pastDueSince),
        stripe_at: d.stripeAt,
        version: e.aggregateVersion,
      };
      await tx
        .insertInto("tenant_billing")
        .values({ tenant_id: d.tenantId, ...row })
        .onConflict((oc) => oc.column("tenant_id").doUpdateSet(row).where("tenant_billing.version", "<", e.aggregateVersion))
        .execute();
      return;
    }
    default: {
      const unreachable: never = e;
      throw new Error(`unhandled billing event ${String((unreachable as { type: string }).type)}`);
    }
  }
}
