import type { Migration } from "kysely";
import * as inboxes from "./2026-11-27T0100-inboxes.ts";
import * as lists from "./2026-11-27T0200-lists.ts";
import * as domains from "./2026-11-27T0300-domains.ts";
import * as messages from "./2026-11-27T0400-messages.ts";
import * as drafts from "./2026-11-27T0500-drafts.ts";
import * as authentication from "./2026-11-27T0600-authentication.ts";
import * as checkpointPerTenant from "./2026-11-27T0700-checkpoint-per-tenant.ts";
import * as blobsUncompressed from "./2026-11-27T0800-blobs-uncompressed.ts";
import * as deliveryOutcomes from "./2026-11-27T0900-delivery-outcomes.ts";
import * as deliveryQueue from "./2026-11-27T1000-delivery-queue.ts";
import * as workspaceEndsAndQuarantine from "./2026-11-30T1000-workspace-ends-and-quarantine.ts";
import * as domainOwnership from "./2026-11-30T1100-domain-ownership.ts";
import * as deliveryDeferrals from "./2026-11-30T2200-delivery-deferrals.ts";
import * as inboxAddressesByAddress from "./2026-11-30T2310-inbox-addresses-by-address.ts";
import * as planLimits from "./2026-12-04T0100-plan-limits.ts";
import * as defaultLimits from "./2026-12-06T0100-default-limits.ts";
import * as tenantPauses from "./2026-12-05T0100-tenant-pauses.ts";
import * as listOrders from "./2026-12-07T0200-list-orders.ts";
import * as folderCountsAndThreadView from "./2026-12-07T0100-folder-counts-and-thread-view.ts";
import * as threadParticipants from "./2026-12-07T0300-thread-participants.ts";
import * as unreadLabel from "./2026-12-08T0100-unread-label.ts";
import * as autovacuum from "./2026-12-09T0100-autovacuum.ts";
import * as failureNotices from "./2026-12-10T0100-failure-notices.ts";
import * as idempotencyCanonicalHash from "./2026-12-11T0100-idempotency-canonical-hash.ts";

/** Every migration, by name; names sort in the order they must run. */
export const migrations: Record<string, Migration> = {
  "2026-11-27T0100-inboxes": inboxes,
  "2026-11-27T0200-lists": lists,
  "2026-11-27T0300-domains": domains,
  "2026-11-27T0400-messages": messages,
  "2026-11-27T0500-drafts": drafts,
  "2026-11-27T0600-authentication": authentication,
  "2026-11-27T0700-checkpoint-per-tenant": checkpointPerTenant,
  "2026-11-27T0800-blobs-uncompressed": blobsUncompressed,
  "2026-11-27T0900-delivery-outcomes": deliveryOutcomes,
  "2026-11-27T1000-delivery-queue": deliveryQueue,
  "2026-11-30T1000-workspace-ends-and-quarantine": workspaceEndsAndQuarantine,
  "2026-11-30T1100-domain-ownership": domainOwnership,
  "2026-11-30T2200-delivery-deferrals": deliveryDeferrals,
  "2026-11-30T2310-inbox-addresses-by-address": inboxAddressesByAddress,
  "2026-12-04T0100-plan-limits": planLimits,
  "2026-12-05T0100-tenant-pauses": tenantPauses,
  "2026-12-06T0100-default-limits": defaultLimits,
  "2026-12-07T0100-folder-counts-and-thread-view": folderCountsAndThreadView,
  "2026-12-07T0200-list-orders": listOrders,
  "2026-12-07T0300-thread-participants": threadParticipants,
  "2026-12-08T0100-unread-label": unreadLabel,
  "2026-12-09T0100-autovacuum": autovacuum,
  "2026-12-10T0100-failure-notices": failureNotices,
  "2026-12-11T0100-idempotency-canonical-hash": idempotencyCanonicalHash,
};
