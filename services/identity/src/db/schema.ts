import type { ColumnType, Generated } from "kysely";

type Timestamp = ColumnType<Date, Date | string, Date | string>;

export { NO_WORKSPACE } from "@mam/service-kit/event-sourcing.ts";

export interface TenantsTable {
  tenant_id: string;
  name: string;
  default_workspace_id: string;
  created_at: Timestamp;
}
export interface WorkspacesTable {
  workspace_id: string;
  tenant_id: string;
  name: string;
  slug: string;
  is_default: boolean;
  inbox_count: Generated<number>;
  domain_count: Generated<number>;
  created_at: Timestamp;
  deleted_at: Timestamp | null;
}
export interface ApiKeysTable {
  workspace_id: string;
  key_id: string;
  tenant_id: string | null;
  kind: string;
  name: string | null;
  prefix: string;
  key_hash: string;
  inbox_id: string | null;
  created_at: Timestamp;
  revoked_at: Timestamp | null;
}
export interface AppliedEventsTable {
  workspace_id: string;
  event_id: string;
  stream_seq: number;
}
export interface CheckpointTable {
  tenant_key: string;
  projection: string;
  stream_seq: number;
  updated_at: Timestamp;
}
export interface IdentityDb {
  tenants: TenantsTable;
  workspaces: WorkspacesTable;
  api_keys: ApiKeysTable;
  applied_events: AppliedEventsTable;
  projection_checkpoint: CheckpointTable;
}
