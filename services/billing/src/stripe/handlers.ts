import type Stripe from "stripe";
import { z } from "zod";
import type { BillingUrl, CheckoutRequest, StripeWebhookRequest } from "@mam/contracts/billing-api.ts";
import { AppError } from "@mam/contracts/errors.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import type { BillingContext } from "../context.ts";
import { notConfigured } from "./client.ts";
import { applyStripeEvent, recordCustomer, tenantBillingOf } from "./commands.ts";
import type { StripeChange } from "./decide.ts";

const SYSTEM = { type: "system" as const, id: null };

function tenantOf(claims: ScopeClaims): string {
  if (claims.kind !== "tenant" || !claims.tenantId) throw new AppError("FORBIDDEN", "Only tk_ keys can manage the billing account");
  return claims.tenantId;
}

function stripeOrRefuse(stripe: Stripe | null): Stripe {
  if (!stripe) throw notConfigured("STRIPE_SECRET_KEY", "NOT_FOUND");
  return stripe;
}

/** Stripe's answer to a call we make: its message is Stripe's, the detail goes to the log. */
async function callStripe<T>(logger: Logger, what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    const e = err as { type?: string; statusCode?: number; code?: string };
    logger.warn({ what, type: e.type, statusCode: e.statusCode, code: e.code }, "stripe call failed");
    throw new AppError("UNAVAILABLE", `Stripe could not be reached or refused the request (${what}); retry shortly`);
  }
}

/**
 * The tenant's Stripe customer, created when first needed. The idempotency key is the
 * tenant's, so replicas racing to create it get one customer; the first to record it wins.
 */
async function customerOf(ctx: BillingContext, stripe: Stripe, tenantId: string, requestId: string, logger: Logger): Promise<string> {
  const known = (await tenantBillingOf(ctx.db, tenantId))?.customerId;
  if (known) return known;
  const c = await callStripe(logger, "customers.create", () =>
    stripe.customers.create({ metadata: { tenantId } }, { idempotencyKey: `mam-customer-${tenantId}` }),
  );
  return recordCustomer(ctx, tenantId, c.id, { actor: SYSTEM, requestId });
}

/** `POST /v1/billing/checkout`: a Checkout Session (subscription mode) for a plan with a Stripe price. */
export async function createCheckout(
  ctx: BillingContext,
  stripe: Stripe | null,
  req: CheckoutRequest,
  c: { claims: ScopeClaims; requestId: string; logger: Logger },
): Promise<BillingUrl> {
  const tenantId = tenantOf(c.claims);
  const s = stripeOrRefuse(stripe);
  const plan = ctx.cfg.BILLING_PLANS?.find((p) => p.id === req.plan);
  if (!plan) throw new AppError("VALIDATION_ERROR", `Invalid body: plan: no plan "${req.plan}"`, [{ path: "plan", message: "no such plan" }]);
  if (!plan.stripePriceId)
    throw new AppError("VALIDATION_ERROR", `Invalid body: plan: "${plan.id}" has no Stripe price (nothing to pay)`, [
      { path: "plan", message: "has no Stripe price" },
    ]);
  // A second subscription would bill the tenant twice, and either one's end or failed payment
  // would move the tenant: plan changes of a subscribed tenant go through the portal.
  if ((await tenantBillingOf(ctx.db, tenantId))?.subscriptionId)
    throw new AppError("CONFLICT", "The tenant has a subscription already: change its plan or cancel it in the customer portal (POST /v1/billing/portal)");
  const customer = await customerOf(ctx, s, tenantId, c.requestId, c.logger);
  const back = (result: string) => {
    const u = new URL(ctx.cfg.BILLING_RETURN_URL);
    u.searchParams.set("checkout", result);
    return u.toString();
  };
  const session = await callStripe(c.logger, "checkout.sessions.create", () =>
    s.checkout.sessions.create({
      mode: "subscription",
      customer,
      line_items: [{ price: plan.stripePriceId!, quantity: 1 }],
      client_reference_id: tenantId,
      metadata: { tenantId, planId: plan.id },
      subscription_data: { metadata: { tenantId, planId: plan.id } },
      success_url: back("success"),
      cancel_url: back("cancel"),
    }),
  );
  if (!session.url) throw new AppError("UNAVAILABLE", "Stripe answered a Checkout Session without a URL; retry shortly");
  return { url: session.url };
}

/** `POST /v1/billing/portal`: a customer-portal session for the tenant's Stripe customer. */
export async function createPortal(
  ctx: BillingContext,
  stripe: Stripe | null,
  c: { claims: ScopeClaims; requestId: string; logger: Logger },
): Promise<BillingUrl> {
  const tenantId = tenantOf(c.claims);
  const s = stripeOrRefuse(stripe);
  const customer = await customerOf(ctx, s, tenantId, c.requestId, c.logger);
  const session = await callStripe(c.logger, "billingPortal.sessions.create", () =>
    s.billingPortal.sessions.create({ customer, return_url: ctx.cfg.BILLING_RETURN_URL }),
  );
  return { url: session.url };
}

const Uuid = z.uuid();
/** The tenants an event's own fields name (client_reference_id, metadata): a cross-check only, never the authority. */
const tenantsIn = (...candidates: unknown[]): string[] => candidates.filter((c): c is string => Uuid.safeParse(c).success);
const idOf = (v: unknown): string | null =>
  typeof v === "string" ? v : v && typeof v === "object" && typeof (v as { id?: unknown }).id === "string" ? (v as { id: string }).id : null;
const dateOf = (secs: unknown) => (typeof secs === "number" ? new Date(secs * 1000) : null);

/** What billing acts on in a verified Stripe event, and the tenants its fields name; null: not ours to act on. */
export function changeOf(event: Stripe.Event): { change: StripeChange; named: string[]; customerId: string | null } | null {
  const at = event.created;
  switch (event.type) {
    case "checkout.session.completed": {
      const o = event.data.object;
      if (o.mode !== "subscription") return null;
      const customerId = idOf(o.customer);
      return {
        change: { kind: "checkout", at, customerId, subscriptionId: idOf(o.subscription) },
        named: tenantsIn(o.client_reference_id, o.metadata?.tenantId),
        customerId,
      };
    }
    case "customer.subscription.created":
    case "customer.subscription.updated":
    case "customer.subscription.deleted": {
      const o = event.data.object;
      const item = o.items?.data?.[0] as (Stripe.SubscriptionItem & { current_period_start?: number; current_period_end?: number }) | undefined;
      const top = o as unknown as { current_period_start?: number; current_period_end?: number };
      const customerId = idOf(o.customer);
      return {
        change: {
          kind: "subscription",
          at,
          customerId,
          subscriptionId: o.id,
          deleted: event.type === "customer.subscription.deleted",
          subStatus: o.status,
          priceId: item?.price?.id ?? null,
          periodStart: dateOf(item?.current_period_start ?? top.current_period_start),
          periodEnd: dateOf(item?.current_period_end ?? top.current_period_end),
        },
        named: tenantsIn(o.metadata?.tenantId),
        customerId,
      };
    }
    case "invoice.paid":
    case "invoice.payment_failed": {
      const o = event.data.object as Stripe.Invoice & { subscription?: unknown };
      const customerId = idOf(o.customer);
      const sub =
        idOf(o.subscription) ?? idOf((o as { parent?: { subscription_details?: { subscription?: unknown } } }).parent?.subscription_details?.subscription);
      const kind = event.type === "invoice.paid" ? "invoice_paid" : "payment_failed";
      return { change: { kind, at, customerId, subscriptionId: sub }, named: tenantsIn(o.metadata?.tenantId), customerId };
    }
    default:
      return null;
  }
}

/**
 * `POST /v1/billing/stripe/webhook` (no key: the signature is the authentication). The
 * signature is checked against the raw bytes before anything is parsed; a bad or missing
 * one is a 400 and changes nothing. An event is applied once (its id recorded with the
 * change), and one older than the newest applied to its tenant changes nothing.
 */
export async function handleStripeWebhook(
  ctx: BillingContext,
  verifier: Stripe,
  req: StripeWebhookRequest,
  c: { requestId: string; logger: Logger },
): Promise<{ received: true }> {
  const secret = ctx.cfg.STRIPE_WEBHOOK_SECRET;
  if (!secret) throw notConfigured("STRIPE_WEBHOOK_SECRET", "UNAVAILABLE");
  let event: Stripe.Event;
  try {
    event = verifier.webhooks.constructEvent(Buffer.from(req.payload, "base64"), req.signature, secret);
  } catch {
    c.logger.warn("stripe webhook refused: bad or missing signature");
    throw new AppError("VALIDATION_ERROR", "Invalid Stripe-Signature: the payload is not signed with this endpoint's secret");
  }
  const found = changeOf(event);
  if (!found) return { received: true };
  // The tenant is the owner of the event's Stripe customer, as billing recorded it (billing
  // creates each tenant's customer before any Checkout Session). client_reference_id and
  // metadata are only cross-checked: anyone can open a Payment Link with a client_reference_id
  // of their choosing, so they never decide whose account an event changes.
  const tenantId = found.customerId
    ? ((await ctx.db.selectFrom("tenant_billing").select("tenant_id").where("customer_id", "=", found.customerId).executeTakeFirst())?.tenant_id ?? null)
    : null;
  if (!tenantId) {
    c.logger.info({ eventId: event.id, type: event.type }, "stripe event names no customer of ours: ignored");
    return { received: true };
  }
  if (found.named.some((t) => t !== tenantId)) {
    c.logger.warn({ eventId: event.id, type: event.type, tenantId }, "stripe event names another tenant than its customer's: ignored");
    return { received: true };
  }
  const fresh = await applyStripeEvent(ctx, tenantId, event.id, found.change, { actor: SYSTEM, requestId: c.requestId });
  c.logger.info({ eventId: event.id, type: event.type, tenantId, duplicate: !fresh }, "stripe event handled");
  return { received: true };
}
