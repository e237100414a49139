import { z } from "zod";
import { parseEventWith, type EventEnvelope } from "./envelope.ts";
import {
  DraftDeletedV1,
  DraftSavedV1,
  MessageBouncedV1,
  MessageDeletedV1,
  MessageDeliveredV1,
  MessageFlaggedV1,
  MessageReceivedV1,
  MessageSentV1,
} from "./message-events.ts";

export const MAILBOX_CONTEXT = "mailbox";

const Metadata = z.record(z.string(), z.unknown());

export const InboxCreatedV1 = z.object({
  inboxId: z.uuid(),
  tenantId: z.uuid(),
  workspaceId: z.uuid(),
  username: z.string(),
  domain: z.string(),
  /** The address allocated at creation: the inbox's canonical identity, never removed. */
  address: z.string(),
  displayName: z.string().nullable(),
  metadata: Metadata,
});
export const InboxUpdatedV1 = z.object({
  inboxId: z.uuid(),
  displayName: z.string().nullable().optional(),
  metadata: Metadata.optional(),
});
/** Why an inbox ended: its own delete, or the end of its workspace. Optional (v1 events had none: deleted). */
export const InboxDeletionReason = z.enum(["deleted", "workspace_deleted"]);
export const InboxDeletedV1 = z.object({ inboxId: z.uuid(), addresses: z.array(z.string()), reason: InboxDeletionReason.optional() });
export const AddressAddedV1 = z.object({ inboxId: z.uuid(), address: z.string(), isPrimary: z.boolean() });
export const AddressRemovedV1 = z.object({
  inboxId: z.uuid(),
  address: z.string(),
  /** Set when the removed address was primary: the address that is primary now. */
  newPrimary: z.string().nullable(),
});

export const ListCreatedV1 = z.object({ listId: z.uuid(), inboxId: z.uuid(), name: z.string(), description: z.string().nullable() });
export const ListUpdatedV1 = z.object({ listId: z.uuid(), name: z.string().optional(), description: z.string().nullable().optional() });
export const ListDeletedV1 = z.object({ listId: z.uuid() });
export const ListEntryAddedV1 = z.object({
  listId: z.uuid(),
  entryId: z.uuid(),
  email: z.string(),
  displayName: z.string().nullable(),
  metadata: Metadata,
});
export const ListEntryUpdatedV1 = z.object({
  listId: z.uuid(),
  entryId: z.uuid(),
  displayName: z.string().nullable().optional(),
  metadata: Metadata.optional(),
});
export const ListEntryRemovedV1 = z.object({ listId: z.uuid(), entryId: z.uuid() });

export const DnsRecordV1 = z.object({
  type: z.enum(["MX", "TXT"]),
  purpose: z.enum(["mx", "spf", "dkim", "dmarc"]),
  name: z.string(),
  value: z.string(),
  priority: z.number().int().nullable(),
  status: z.enum(["pending", "verified"]),
});
export const DomainAddedV1 = z.object({
  domainId: z.uuid(),
  domain: z.string(),
  selector: z.string(),
  /** Public half only; the private key is kept in the mailbox's key store, never in an event. */
  dkimPublicKey: z.string(),
  records: z.array(DnsRecordV1),
});
export const DomainCheckedV1 = z.object({
  domainId: z.uuid(),
  status: z.enum(["pending", "verified", "failed"]),
  records: z.array(DnsRecordV1),
});
/**
 * Why a domain was released without its tenant asking: an unverified claim lapsed (older
 * than the claim TTL), another tenant proved DNS control of the name, or its workspace was
 * deleted. Absent: removed on purpose.
 */
export const DomainReleaseReason = z.enum(["expired", "verified_elsewhere", "workspace_deleted"]);
export type DomainReleaseReason = z.infer<typeof DomainReleaseReason>;
export const DomainRemovedV1 = z.object({ domainId: z.uuid(), domain: z.string(), reason: DomainReleaseReason.optional() });

/**
 * The mailbox heard that identity deleted the workspace: nothing may be created in it any
 * more. Its inboxes and domains end with their own InboxDeleted and DomainRemoved.
 */
export const WorkspaceClosedV1 = z.object({ workspaceId: z.uuid(), tenantId: z.uuid() });

export const mailboxEventSchemas = {
  MessageSent: { 1: MessageSentV1 },
  MessageReceived: { 1: MessageReceivedV1 },
  MessageFlagged: { 1: MessageFlaggedV1 },
  MessageDeleted: { 1: MessageDeletedV1 },
  MessageDelivered: { 1: MessageDeliveredV1 },
  MessageBounced: { 1: MessageBouncedV1 },
  DraftSaved: { 1: DraftSavedV1 },
  DraftDeleted: { 1: DraftDeletedV1 },
  InboxCreated: { 1: InboxCreatedV1 },
  InboxUpdated: { 1: InboxUpdatedV1 },
  InboxDeleted: { 1: InboxDeletedV1 },
  AddressAdded: { 1: AddressAddedV1 },
  AddressRemoved: { 1: AddressRemovedV1 },
  ListCreated: { 1: ListCreatedV1 },
  ListUpdated: { 1: ListUpdatedV1 },
  ListDeleted: { 1: ListDeletedV1 },
  ListEntryAdded: { 1: ListEntryAddedV1 },
  ListEntryUpdated: { 1: ListEntryUpdatedV1 },
  ListEntryRemoved: { 1: ListEntryRemovedV1 },
  DomainAdded: { 1: DomainAddedV1 },
  DomainChecked: { 1: DomainCheckedV1 },
  DomainRemoved: { 1: DomainRemovedV1 },
  WorkspaceClosed: { 1: WorkspaceClosedV1 },
} as const;

export type MailboxEvent =
  | { type: "InboxCreated"; schemaVersion: 1; data: z.infer<typeof InboxCreatedV1> }
  | { type: "InboxUpdated"; schemaVersion: 1; data: z.infer<typeof InboxUpdatedV1> }
  | { type: "InboxDeleted"; schemaVersion: 1; data: z.infer<typeof InboxDeletedV1> }
  | { type: "AddressAdded"; schemaVersion: 1; data: z.infer<typeof AddressAddedV1> }
  | { type: "AddressRemoved"; schemaVersion: 1; data: z.infer<typeof AddressRemovedV1> }
  | { type: "ListCreated"; schemaVersion: 1; data: z.infer<typeof ListCreatedV1> }
  | { type: "ListUpdated"; schemaVersion: 1; data: z.infer<typeof ListUpdatedV1> }
  | { type: "ListDeleted"; schemaVersion: 1; data: z.infer<typeof ListDeletedV1> }
  | { type: "ListEntryAdded"; schemaVersion: 1; data: z.infer<typeof ListEntryAddedV1> }
  | { type: "ListEntryUpdated"; schemaVersion: 1; data: z.infer<typeof ListEntryUpdatedV1> }
  | { type: "ListEntryRemoved"; schemaVersion: 1; data: z.infer<typeof ListEntryRemovedV1> }
  | { type: "DomainAdded"; schemaVersion: 1; data: z.infer<typeof DomainAddedV1> }
  | { type: "DomainChecked"; schemaVersion: 1; data: z.infer<typeof DomainCheckedV1> }
  | { type: "DomainRemoved"; schemaVersion: 1; data: z.infer<typeof DomainRemovedV1> }
  | { type: "WorkspaceClosed"; schemaVersion: 1; data: z.infer<typeof WorkspaceClosedV1> }
  | { type: "MessageSent"; schemaVersion: 1; data: z.infer<typeof MessageSentV1> }
  | { type: "MessageReceived"; schemaVersion: 1; data: z.infer<typeof MessageReceivedV1> }
  | { type: "MessageFlagged"; schemaVersion: 1; data: z.infer<typeof MessageFlaggedV1> }
  | { type: "MessageDeleted"; schemaVersion: 1; data: z.infer<typeof MessageDeletedV1> }
  | { type: "MessageDelivered"; schemaVersion: 1; data: z.infer<typeof MessageDeliveredV1> }
  | { type: "MessageBounced"; schemaVersion: 1; data: z.infer<typeof MessageBouncedV1> }
  | { type: "DraftSaved"; schemaVersion: 1; data: z.infer<typeof DraftSavedV1> }
  | { type: "DraftDeleted"; schemaVersion: 1; data: z.infer<typeof DraftDeletedV1> };

export type DnsRecord = z.infer<typeof DnsRecordV1>;

export type MailboxEnvelope = Omit<EventEnvelope, "type" | "schemaVersion" | "data"> & MailboxEvent;

export const parseMailboxEvent = (raw: unknown) => parseEventWith<MailboxEnvelope>(mailboxEventSchemas, raw);
