// Tables of the realtime schema, one interface per owner (feed/, ws/, webhooks/), joined below.
// The feed renderer (feed/)
/**
 * What the feed knows of each domain (domain.verified fires on the transition only): its
 * latest event's version and whether that left it verified (a row stays when it is not).
 */
export interface FeedVerifiedDomainsTable {
  workspace_id: string;
  domain_id: string;
  domain: string;
  /** The domain event whose check made it verified (while verified); the latest event otherwise. */
  event_id: string;
  verified_at: Date;
  /** The aggregate version of the latest domain event applied: an older one changes nothing. */
  version: number;
  verified: boolean;
}
/** A domain event that made its domain verified: announced (domain.verified) whenever it is rendered. */
export interface FeedDomainTransitionsTable {
  event_id: string;
  workspace_id: string;
  domain_id: string;
}
// The WebSocket door (ws/)
/** The WebSocket directory: a workspace's tenant (a tombstone once deleted). */
export interface WsWorkspacesTable {
  workspace_id: string;
  tenant_id: string;
  deleted: boolean;
}
/** The WebSocket directory: an inbox's workspace and tenant (a tombstone once deleted). */
export interface WsInboxesTable {
  workspace_id: string;
  inbox_id: string;
  tenant_id: string;
  deleted: boolean;
}
/** How far each of the directory's consumers has applied the event stream. */
export interface WsDirectoryCheckpointTable {
  consumer: string;
  stream_seq: number;
}
// Webhooks (webhooks/)
/** The Webhook aggregate's read model (rebuilt from its events). A tenant-wide webhook is filed under NO_WORKSPACE. */
export interface WebhooksTable {
  workspace_id: string;
  webhook_id: string;
  tenant_id: string;
  url: string;
  events: string[];
  is_active: boolean;
  version: number;
  created_at: Date;
  updated_at: Date;
}
/** Signing secrets: in no event; written in the transaction of the command that created the webhook. */
export interface WebhookSecretsTable {
  workspace_id: string;
  webhook_id: string;
  tenant_id: string;
  secret: string;
  created_at: Date;
}
/** What the attempts say of a webhook (not events): failing since when, last success. */
export interface WebhookHealthTable {
  workspace_id: string;
  webhook_id: string;
  failing_since: Date | null;
  last_delivery_at: Date | null;
}
/** Workspaces identity deleted: their webhooks went with them, and none is created there again. */
export interface WebhookEndedWorkspacesTable {
  workspace_id: string;
  tenant_id: string;
  ended_at: Date;
}
export type WebhookDeliveryState = "pending" | "delivered" | "failed" | "canceled";
/** The delivery queue: one row per webhook and event; leased (locked_until, lease) while an attempt runs. */
export interface WebhookDeliveriesTable {
  webhook_id: string;
  event_id: string;
  workspace_id: string;
  tenant_id: string;
  event_type: string;
  body: string | null;
  state: WebhookDeliveryState;
  attempts: number;
  first_attempt_at: Date | null;
  next_attempt_at: Date;
  retry_delay_ms: number | null;
  locked_until: Date | null;
  lease: string | null;
  created_at: Date;
  completed_at: Date | null;
}
/** The delivery log: one row per attempt. */
export interface WebhookAttemptsTable {
  workspace_id: string;
  webhook_id: string;
  attempt_id: string;
  event_id: string;
  event_type: string;
  attempt: number;
  attempted_at: Date;
  status_code: number | null;
  latency_ms: number;
  success: boolean;
  error: string | null;
  next_attempt_at: Date | null;
}
/** Every event-sourced service's bookkeeping: events a projection applied, and its checkpoint per tenant. */
export interface AppliedEventsTable {
  workspace_id: string;
  event_id: string;
  stream_seq: number;
}
export interface ProjectionCheckpointTable {
  projection: string;
  tenant_key: string;
  stream_seq: number;
  updated_at: Date | string;
}

export interface RealtimeDb {
  feed_verified_domains: FeedVerifiedDomainsTable;
  feed_domain_transitions: FeedDomainTransitionsTable;
  ws_workspaces: WsWorkspacesTable;
  ws_inboxes: WsInboxesTable;
  ws_directory_checkpoint: WsDirectoryCheckpointTable;
  webhooks: WebhooksTable;
  webhook_secrets: WebhookSecretsTable;
  webhook_health: WebhookHealthTable;
  webhook_ended_workspaces: WebhookEndedWorkspacesTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
  applied_events: AppliedEventsTable;
  projection_checkpoint: ProjectionCheckpointTable;
}
