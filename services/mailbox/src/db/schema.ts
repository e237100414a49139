import type { ColumnType } from "kysely";
import type { DnsRecord } from "@mam/contracts/mailbox-events.ts";
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

export interface MailboxDb extends ProjectionTables {
  domains: DomainsTable;
  domain_claims: DomainClaimsTable;
  dkim_keys: DkimKeysTable;
  lists: ListsTable;
  list_entries: ListEntriesTable;
  inboxes: InboxesTable;
  inbox_addresses: InboxAddressesTable;
  address_claims: AddressClaimsTable;
}
