import type { ColumnType } from "kysely";
import type { DnsRecord } from "@mam/contracts/mailbox-events.ts";
import type { AttachmentRef, Authentication, DraftFields as DraftFieldsSchema } from "@mam/contracts/message-events.ts";
import type { z } from "zod";

type DraftFields = z.infer<typeof DraftFieldsSchema>;
import type { ProjectionTables } from "@mam/service-kit/event-sourcing.ts";

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type Json = ColumnType<Record<string, unknown>, string, string>;

export interface InboxesTable {
  workspace_id: string;
  inbox_id: string;
  tenant_id: string;
  username: string;
  domain: string;
  canonical_email: string;
  display_name: string | null;
  metadata: Json;
  /** The inbox aggregate's version: the aggregateVersion of the last event applied to it. */
  version: number;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: Timestamp | null;
}
export interface InboxAddressesTable {
  workspace_id: string;
  inbox_id: string;
  address: string;
  is_primary: boolean;
  is_canonical: boolean;
  created_at: Timestamp;
}
/** The decision store of "an address belongs to one inbox, across all tenants". */
export interface AddressClaimsTable {
  address: string;
  tenant_id: string;
  workspace_id: string;
  inbox_id: string;
}

/**
 * Addresses released by a deleted inbox or a removed alias, by whom and when: held back from
 * other tenants for ADDRESS_QUARANTINE_DAYS. A new claim of the address ends its row.
 */
export interface AddressQuarantineTable {
  address: string;
  tenant_id: string;
  released_at: Timestamp;
}
/** Workspaces whose end the mailbox heard of (WorkspaceClosed). */
export interface ClosedWorkspacesTable {
  workspace_id: string;
  tenant_id: string;
  closed_at: Timestamp;
}

export interface ListsTable {
  workspace_id: string;
  list_id: string;
  inbox_id: string;
  name: string;
  description: string | null;
  version: number;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: Timestamp | null;
}
export interface ListEntriesTable {
  workspace_id: string;
  list_id: string;
  entry_id: string;
  email: string;
  display_name: string | null;
  metadata: Json;
  created_at: Timestamp;
}

export interface DomainsTable {
  workspace_id: string;
  domain_id: string;
  tenant_id: string;
  domain: string;
  selector: string;
  dkim_public_key: string;
  status: "pending" | "verified" | "failed";
  records: ColumnType<DnsRecord[], string, string>;
  version: number;
  created_at: Timestamp;
  updated_at: Timestamp;
  verified_at: Timestamp | null;
  deleted_at: Timestamp | null;
}
export interface DomainClaimsTable {
  domain: string;
  workspace_id: string;
  domain_id: string;
}
/** Not a projection: survives a rebuild of the read model. */
export interface DkimKeysTable {
  key_ref: string;
  selector: string;
  private_key_pem: string;
  public_key: string;
  created_at: Timestamp;
}

export interface ThreadsTable {
  workspace_id: string;
  thread_id: string;
  inbox_id: string;
  subject: string;
  created_at: Timestamp;
  last_message_at: Timestamp;
}
/** Where a message is listed: the API's folders (they overlap), and `inbound` for the inbox list's direction filter. */
export type FolderName = "inbox" | "sent" | "starred" | "archived" | "trash" | "inbound";
/** What folder_counts counts: the folders, and an inbox's live drafts (total only). */
export type CountedName = FolderName | "drafts";
/** One row per thread and folder it has a live message in: the folder's newest message of the thread, its counts. */
export interface ThreadFoldersTable {
  workspace_id: string;
  inbox_id: string;
  thread_id: string;
  folder: FolderName;
  tenant_id: string;
  last_message_id: string;
  last_message_at: Timestamp;
  message_count: number;
  unread_count: number;
  /** Distinct lower-cased senders and To/Cc recipients of the thread's messages in the folder, sorted, at most 50. */
  participants: JsonOf<string[]>;
  /** Distinct labels of the thread's messages in the folder, sorted. */
  labels: JsonOf<string[]>;
}
/** Per inbox and folder, the sums of thread_folders: messages, unread ones, threads; and its live drafts. */
export interface FolderCountsTable {
  workspace_id: string;
  inbox_id: string;
  folder: CountedName;
  total: ColumnType<string, number, number>;
  unread: ColumnType<string, number, number>;
  threads: ColumnType<string, number, number>;
}
type JsonOf<T> = ColumnType<T, string, string>;
export interface MessagesTable {
  workspace_id: string;
  message_id: string;
  inbox_id: string;
  tenant_id: string;
  thread_id: string;
  direction: "inbound" | "outbound";
  status: "sent" | "delivered" | "bounced" | "received";
  from_address: string;
  from_name: string | null;
  to_addresses: JsonOf<string[]>;
  cc_addresses: JsonOf<string[]>;
  bcc_addresses: JsonOf<string[]>;
  reply_to: string | null;
  subject: string;
  preview: string;
  plain_hash: string | null;
  html_hash: string | null;
  raw_hash: string;
  raw_size: number;
  message_id_header: string;
  in_reply_to: string | null;
  references: JsonOf<string[]>;
  attachments: JsonOf<AttachmentRef[]>;
  labels: JsonOf<string[]>;
  is_read: boolean;
  is_starred: boolean;
  is_archived: boolean;
  source_message_id: string | null;
  authentication: JsonOf<Authentication | null> | null;
  version: number;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: Timestamp | null;
}
export interface BlobsTable {
  workspace_id: string;
  hash: string;
  size: number;
  data: Buffer;
  created_at: Timestamp;
}
export interface IdempotencyKeysTable {
  workspace_id: string;
  inbox_id: string;
  key: string;
  /** Of the body as written (what earlier releases compare). */
  request_hash: string;
  /** Of the request as parsed, canonical JSON; null in records made before it was kept. */
  canonical_hash: string | null;
  response: JsonOf<unknown>;
  created_at: Timestamp;
}

export interface DraftsTable {
  workspace_id: string;
  draft_id: string;
  inbox_id: string;
  fields: JsonOf<DraftFields>;
  version: number;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: Timestamp | null;
}

export interface DeliveryOutcomesTable {
  workspace_id: string;
  message_id: string;
  recipient: string;
  outcome: "delivered" | "bounced";
  at: string | Date;
  /** Why it bounced (null for a delivery, and for outcomes recorded before reasons were kept). */
  reason: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface DeliveryQueueTable {
  workspace_id: string;
  message_id: string;
  tenant_id: string;
  attempts: number;
  next_try_at: string | Date;
  last_error: string;
  lease: string | null;
  unrecorded: ColumnType<Unrecorded[], string, string>;
  /** What the last try met, for the recipients waiting: { recipients, reason }[]. */
  deferred: ColumnType<{ recipients: string[]; reason: string }[], string | undefined, string>;
}

/** A delivery status notification owed to the sender of mail accepted for an inbox that was gone. */
export interface FailureNoticesTable {
  notice_id: string;
  queue_id: string;
  recipient: string;
  raw: Buffer;
  created_at: string | Date;
  attempts: ColumnType<number, number | undefined, number>;
  next_try_at: string | Date;
  last_error: ColumnType<string | null, string | null | undefined, string | null>;
  lease: ColumnType<string | null, string | null | undefined, string | null>;
  settled_at: ColumnType<Date | null, string | Date | null | undefined, string | Date | null>;
}

/** An outcome a server gave that is not recorded as an event yet. */
export interface Unrecorded {
  type: "MessageDelivered" | "MessageBounced";
  recipients: string[];
  via?: string;
  reason?: string;
}

/** A tenant's plan limits as billing last told them (null: unlimited); no row: nothing limited. */
export interface TenantLimitsTable {
  tenant_id: string;
  plan_id: string;
  inboxes: number | null;
  emails_per_month: number | null;
  domains: number | null;
  version: number;
}
/** The default plan's limits as billing last announced them (DefaultLimitsSet): one row, id 1; plan_id null: no plans, unlimited. */
export interface DefaultLimitsTable {
  id: number;
  plan_id: string | null;
  inboxes: number | null;
  emails_per_month: number | null;
  domains: number | null;
  version: number;
}
/** Whether billing paused the tenant (TenantBillingChanged): its sends are refused. */
export interface TenantPausesTable {
  tenant_id: string;
  paused: boolean;
  version: number;
}
/** Messages a tenant sent in a UTC month (`month`: its first day), counted in each send's transaction. */
export interface TenantMonthlySendsTable {
  tenant_id: string;
  month: Date | string;
  sent: number;
}

export interface MailboxDb extends ProjectionTables {
  tenant_limits: TenantLimitsTable;
  default_limits: DefaultLimitsTable;
  tenant_pauses: TenantPausesTable;
  tenant_monthly_sends: TenantMonthlySendsTable;
  delivery_outcomes: DeliveryOutcomesTable;
  delivery_queue: DeliveryQueueTable;
  failure_notices: FailureNoticesTable;
  drafts: DraftsTable;
  threads: ThreadsTable;
  thread_folders: ThreadFoldersTable;
  folder_counts: FolderCountsTable;
  messages: MessagesTable;
  blobs: BlobsTable;
  idempotency_keys: IdempotencyKeysTable;
  domains: DomainsTable;
  domain_claims: DomainClaimsTable;
  dkim_keys: DkimKeysTable;
  lists: ListsTable;
  list_entries: ListEntriesTable;
  inboxes: InboxesTable;
  inbox_addresses: InboxAddressesTable;
  address_claims: AddressClaimsTable;
  address_quarantine: AddressQuarantineTable;
  closed_workspaces: ClosedWorkspacesTable;
}
