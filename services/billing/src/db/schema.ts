// Tables of the billing schema.
import type { BillingStatus, PlanLimits } from "@mam/contracts/billing-events.ts";
import type { ProjectionTables } from "@mam/service-kit/event-sourcing.ts";

// Plans (plans/)
/** A tenant's plan and its limits, from TenantPlanChanged. */
export interface TenantPlansTable {
  tenant_id: string;
  plan_id: string;
  limits: PlanLimits;
  version: number;
  updated_at: Date;
}

/** The default plan's limits as last announced (DefaultLimitsSet): one row, id 1. */
export interface DefaultLimitsTable {
  id: number;
  plan_id: string | null;
  limits: PlanLimits | null;
  version: number;
}

// Stripe (stripe/)
/** A tenant's Stripe billing, from TenantBillingChanged. */
export interface TenantBillingTable {
  tenant_id: string;
  status: BillingStatus;
  customer_id: string | null;
  subscription_id: string | null;
  period_start: Date | null;
  period_end: Date | null;
  past_due_since: Date | null;
  /** Stripe `created` (epoch seconds) of the newest Stripe event applied. */
  stripe_at: string | number | null;
  version: number;
}
/** Stripe events handled (a redelivery changes nothing), written in the change's transaction. */
export interface StripeEventsTable {
  event_id: string;
  tenant_id: string | null;
  handled_at: Date;
}

// Metrics (metrics/)
/** A workspace's tenant, from identity's WorkspaceCreated or any mailbox event of it. */
export interface MetricWorkspacesTable {
  workspace_id: string;
  tenant_id: string;
}
/** An inbox's workspace and tenant; a deleted one stays (its counts are history). */
export interface MetricInboxesTable {
  inbox_id: string;
  workspace_id: string;
  tenant_id: string;
  deleted: boolean;
}
/** Which inbox a sent message left from, and whether a bounce of it was counted already. */
export interface MetricMessagesTable {
  message_id: string;
  workspace_id: string;
  inbox_id: string;
  bounced: boolean;
}
/** Cumulative counter rows: `cum` is the total of `kind` in the scope up to and including `at`. */
export interface MetricCountersTable {
  scope_id: string;
  kind: string;
  at: Date;
  cum: string | number;
}
/** Events already counted (a redelivery counts nothing). */
export interface MetricAppliedTable {
  event_id: string;
}
/** How far each consumer has applied the stream; no row: the counters are (re)built from the first event. */
export interface MetricCheckpointTable {
  consumer: string;
  stream_seq: number;
}

export interface BillingDb extends ProjectionTables {
  tenant_plans: TenantPlansTable;
  default_limits: DefaultLimitsTable;
  tenant_billing: TenantBillingTable;
  stripe_events: StripeEventsTable;
  metric_workspaces: MetricWorkspacesTable;
  metric_inboxes: MetricInboxesTable;
  metric_messages: MetricMessagesTable;
  metric_counters: MetricCountersTable;
  metric_applied: MetricAppliedTable;
  metric_checkpoint: MetricCheckpointTable;
}
