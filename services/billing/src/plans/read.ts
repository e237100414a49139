import type { BillingAccount } from "@mam/contracts/billing-api.ts";
import { AppError } from "@mam/contracts/errors.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { BillingContext } from "../context.ts";
import { tenantCumBefore } from "../metrics/counters.ts";
import { checkGrace, graceMsOf, tenantBillingOf } from "../stripe/commands.ts";
import { effectiveStatus } from "../stripe/decide.ts";
import { tenantPlanOf } from "./commands.ts";

/** The UTC calendar month `at` falls in, `[start, end)`. */
export function monthOf(at: Date): { start: Date; end: Date } {
  return { start: new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1)), end: new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1)) };
}

/**
 * `GET /v1/billing` (tk_ keys only): the tenant's plan, and its usage from billing's own
 * metrics counters (kept from the event stream, so a moment behind the mailbox, which
 * enforces the limits on its own counts): live inboxes and domains now, messages sent
 * this UTC month; the Stripe status, and the subscription's period (else the month).
 */
export async function getAccount(ctx: BillingContext, claims: ScopeClaims): Promise<BillingAccount> {
  if (claims.kind !== "tenant" || !claims.tenantId) throw new AppError("FORBIDDEN", "Only tk_ keys can see the billing account");
  const tenantId = claims.tenantId;
  const month = monthOf(ctx.clock());
  const { db } = ctx;
  const billing = await tenantBillingOf(db, tenantId);
  const status = effectiveStatus(billing, { graceMs: graceMsOf(ctx), now: ctx.clock() });
  // The grace period ran out since the last periodic check: pause now, as the reader sees it.
  if (billing && status !== billing.status) await checkGrace(ctx, tenantId, { actor: { type: "system", id: null }, requestId: ctx.newId() });
  const period = billing?.periodStart && billing.periodEnd ? { start: billing.periodStart, end: billing.periodEnd } : month;
  const on = ctx.cfg.BILLING_PLANS ? await tenantPlanOf(db, tenantId) : null;
  const plan = on ? ctx.cfg.BILLING_PLANS!.find((p) => p.id === on.planId) : undefined;
  const [inboxes, domains, emailsPerMonth] = await Promise.all([
    tenantCumBefore(db, tenantId, "inboxes"),
    tenantCumBefore(db, tenantId, "domains"),
    (async () => (await tenantCumBefore(db, tenantId, "sent", month.end)) - (await tenantCumBefore(db, tenantId, "sent", month.start)))(),
  ]);
  return {
    plan: on ? { id: on.planId, name: plan?.name ?? on.planId, limits: on.limits } : null,
    status,
    usage: { inboxes, domains, emailsPerMonth },
    period: { start: period.start.toISOString(), end: period.end.toISOString() },
  };
}
