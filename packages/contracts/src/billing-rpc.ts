import { BillingAccount, BillingQuery, Metrics, MetricsQuery } from "./billing-api.ts";
import { contract } from "./rpc-contract.ts";

/** The billing service's request subjects, `svc.billing.<resource>.<verb>`. */
export const BillingRpc = {
  metrics: contract("svc.billing.metrics.get", MetricsQuery, Metrics, "query"),
  account: contract("svc.billing.account.get", BillingQuery, BillingAccount, "query"),
};
