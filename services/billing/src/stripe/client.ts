import Stripe from "stripe";
import { AppError } from "@mam/contracts/errors.ts";
import type { BillingConfig } from "../config.ts";

/** The Stripe SDK, sending to STRIPE_API_BASE when set; null without STRIPE_SECRET_KEY. */
export function stripeClient(cfg: BillingConfig): Stripe | null {
  if (!cfg.STRIPE_SECRET_KEY) return null;
  return new Stripe(cfg.STRIPE_SECRET_KEY, { ...apiBase(cfg.STRIPE_API_BASE), maxNetworkRetries: 2, timeout: 20_000 });
}

/** A client for verifying webhook signatures only (it makes no API call, so needs no key). */
export const signatureVerifier = (cfg: BillingConfig): Stripe => stripeClient(cfg) ?? new Stripe("sk_unset_webhooks_only");

function apiBase(base: string | undefined): Pick<Stripe.StripeConfig, "host" | "port" | "protocol"> {
  if (!base) return {};
  const u = new URL(base);
  const protocol = u.protocol === "http:" ? "http" : "https";
  return { host: u.hostname, port: Number(u.port) || (protocol === "http" ? 80 : 443), protocol };
}

/**
 * Stripe is not set up on this platform. A client's checkout or portal is a 404 (there is no
 * billing account to pay through, and asking again will not make one); Stripe's own webhook is a
 * 503, so Stripe keeps its events and retries them until the operator sets the secret.
 */
export const notConfigured = (what: string, code: "NOT_FOUND" | "UNAVAILABLE") =>
  new AppError(code, `Billing is not configured on this platform (${what} unset): there is no Stripe account to pay through`);
