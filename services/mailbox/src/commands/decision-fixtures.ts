import type { DnsRecord, MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { EventDraft } from "./execute.ts";

/** Ids and callers for the decision tests: two tenants, acme with two workspaces. */
export const ids = {
  acme: "01900000-0000-7000-8000-00000000a001",
  globex: "01900000-0000-7000-8000-00000000a002",
  acmeMain: "01900000-0000-7000-8000-00000000b001",
  acmeSales: "01900000-0000-7000-8000-00000000b002",
  globexMain: "01900000-0000-7000-8000-00000000b003",
  support: "01900000-0000-7000-8000-00000000c001",
  sales: "01900000-0000-7000-8000-00000000c002",
  rival: "01900000-0000-7000-8000-00000000c003",
  newInbox: "01900000-0000-7000-8000-00000000c0ff",
  list: "01900000-0000-7000-8000-00000000d001",
  otherList: "01900000-0000-7000-8000-00000000d002",
  newList: "01900000-0000-7000-8000-00000000d0ff",
  entry: "01900000-0000-7000-8000-00000000e001",
  newEntry: "01900000-0000-7000-8000-00000000e0ff",
  domain: "01900000-0000-7000-8000-00000000f001",
  newDomain: "01900000-0000-7000-8000-00000000f0ff",
};

export const D = "mail.test";

const claims = (kind: ScopeClaims["kind"], tenantId: string | null, workspaces: ScopeClaims["workspaces"], inboxId: string | null = null): ScopeClaims => ({
  v: 1,
  aud: ["mailbox"],
  kid: "01900000-0000-7000-8000-000000000001",
  kind,
  tenantId,
  workspaces,
  inboxId,
  iat: 0,
  exp: 60,
});

export const callers = {
  acmeTenant: claims("tenant", ids.acme, "*"),
  acmeMain: claims("workspace", ids.acme, [ids.acmeMain]),
  acmeSales: claims("workspace", ids.acme, [ids.acmeSales]),
  supportInbox: claims("inbox", ids.acme, [ids.acmeMain], ids.support),
  salesInbox: claims("inbox", ids.acme, [ids.acmeMain], ids.sales),
  globexTenant: claims("tenant", ids.globex, "*"),
  operator: claims("super_admin", null, []),
};

export const inboxCreated = (inboxId: string, tenantId: string, workspaceId: string, username: string, domain = D): MailboxEvent => ({
  type: "InboxCreated",
  schemaVersion: 1,
  data: { inboxId, tenantId, workspaceId, username, domain, address: `${username}@${domain}`, displayName: null, metadata: {} },
});

/** acme's support@ and sales@ in its main workspace, globex's rival@. */
export const mailboxes: MailboxEvent[] = [
  inboxCreated(ids.support, ids.acme, ids.acmeMain, "support"),
  inboxCreated(ids.sales, ids.acme, ids.acmeMain, "sales"),
  inboxCreated(ids.rival, ids.globex, ids.globexMain, "rival"),
];

export const addressAdded = (inboxId: string, address: string, isPrimary = true): MailboxEvent => ({
  type: "AddressAdded",
  schemaVersion: 1,
  data: { inboxId, address, isPrimary },
});

export const addressRemoved = (inboxId: string, address: string, newPrimary: string | null = null): MailboxEvent => ({
  type: "AddressRemoved",
  schemaVersion: 1,
  data: { inboxId, address, newPrimary },
});

export const inboxDeleted = (inboxId: string, addresses: string[]): MailboxEvent => ({ type: "InboxDeleted", schemaVersion: 1, data: { inboxId, addresses } });

export const records = (domain: string, status: DnsRecord["status"] = "pending"): DnsRecord[] => [
  { type: "MX", purpose: "mx", name: domain, value: `mx.${D}`, priority: 10, status },
  { type: "TXT", purpose: "spf", name: domain, value: `v=spf1 include:_spf.${D} -all`, priority: null, status },
];

/** The envelope fields of decided events, which `expectEvents` leaves aside. */
export const filed = (drafts: { event: MailboxEvent }[]) =>
  (drafts as EventDraft[]).map((d) => ({ tenantId: d.tenantId, workspaceId: d.workspaceId, aggregateId: d.aggregateId, aggregateVersion: d.aggregateVersion }));
