import {
  BillingAccount,
  BillingQuery,
  BillingUrl,
  CheckoutRequest,
  Metrics,
  MetricsQuery,
  PortalRequest,
  StripeWebhookReply,
  StripeWebhookRequest,
} from "./billing-api.ts";
import { contract } from "./rpc-contract.ts";

/** The billing service's request subjects, `svc.billing.<resource>.<verb>`. */
export const BillingRpc = {
  metrics: contract("svc.billing.metrics.get", MetricsQuery, Metrics, "query"),
  account: contract("svc.billing.account.get", BillingQuery, BillingAccount, "query"),
  checkout: contract("svc.billing.checkout.create", CheckoutRequest, BillingUrl),
  portal: contract("svc.billing.portal.create", PortalRequest, BillingUrl),
  /** Served without a scope token: Stripe calls it; the signature is the authentication. */
  stripeWebhook: contract("svc.billing.stripe.webhook", StripeWebhookRequest, StripeWebhookReply),
};
