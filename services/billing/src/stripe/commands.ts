import type { Kysely } from "kysely";
import type { CommandMeta } from "@mam/service-kit/commands.ts";
import type { BillingContext } from "../context.ts";
import type { BillingDb } from "../db/schema.ts";
import { execute, tenantPlanOf, tenantVersionOf } from "../plans/commands.ts";
import { decideCustomer, decideGrace, decideStripeEvent, type StripeChange, type StripePolicy, type TenantBilling, type TenantState } from "./decide.ts";

export async function tenantBillingOf(db: Kysely<BillingDb>, tenantId: string): Promise<TenantBilling | null> {
  const r = await db.selectFrom("tenant_billing").selectAll().where("tenant_id", "=", tenantId).executeTakeFirst();
  if (!r) return null;
  return {
    status: r.status,
    customerId: r.customer_id,
    subscriptionId: r.subscription_id,
    periodStart: r.period_start,
    periodEnd: r.period_end,
    pastDueSince: r.past_due_since,
    stripeAt: r.stripe_at === null ? null : Number(r.stripe_at),
  };
}

async function tenantStateOf(db: Kysely<BillingDb>, tenantId: string): Promise<TenantState> {
  const [plan, billing, version] = await Promise.all([tenantPlanOf(db, tenantId), tenantBillingOf(db, tenantId), tenantVersionOf(db, tenantId)]);
  return { tenantId, plan, billing, version };
}

export const graceMsOf = (ctx: BillingContext) => ctx.cfg.BILLING_GRACE_DAYS * 86_400_000;

export function policyOf(ctx: BillingContext): StripePolicy | null {
  const plans = ctx.cfg.BILLING_PLANS;
  if (!plans) return null;
  return { plans, defaultPlan: plans.find((p) => p.id === ctx.cfg.BILLING_DEFAULT_PLAN)!, graceMs: graceMsOf(ctx), now: ctx.clock() };
}

/**
 * Applies one Stripe event to its tenant, once: the event id is recorded in the same
 * transaction as the change, under the tenant's lock, so a redelivery (or the same event
 * at two replicas at once) changes nothing. Resolves with whether it was new.
 */
export async function applyStripeEvent(ctx: BillingContext, tenantId: string, eventId: string, ev: StripeChange, meta: CommandMeta): Promise<boolean> {
  return execute(ctx, tenantId, meta, {
    load: async (tx) => ({
      seen: !!(await tx.selectFrom("stripe_events").select("event_id").where("event_id", "=", eventId).executeTakeFirst()),
      state: await tenantStateOf(tx, tenantId),
    }),
    decide: ({ seen, state }) => {
      const policy = policyOf(ctx);
      return seen || !policy ? [] : decideStripeEvent(state, ev, policy);
    },
    answer: async (tx, { seen }) => {
      if (!seen) await tx.insertInto("stripe_events").values({ event_id: eventId, tenant_id: tenantId, handled_at: ctx.clock() }).execute();
      return !seen;
    },
  });
}

/** Pauses the tenant if its grace period after a failed payment has passed; resolves with whether it did. */
export async function checkGrace(ctx: BillingContext, tenantId: string, meta: CommandMeta): Promise<boolean> {
  return execute(ctx, tenantId, meta, {
    load: (tx) => tenantStateOf(tx, tenantId),
    decide: (state) => decideGrace(state, { graceMs: graceMsOf(ctx), now: ctx.clock() }),
    answer: (_tx, _s, events) => Promise.resolve(events.length > 0),
  });
}

/** Records the tenant's Stripe customer unless one is recorded already; resolves with the tenant's customer. */
export async function recordCustomer(ctx: BillingContext, tenantId: string, customerId: string, meta: CommandMeta): Promise<string> {
  return execute(ctx, tenantId, meta, {
    load: (tx) => tenantStateOf(tx, tenantId),
    decide: (state) => decideCustomer(state, customerId),
    answer: (_tx, state) => Promise.resolve(state.billing?.customerId ?? customerId),
  });
}
