import { z } from "zod";
import { parseEventWith, type EventEnvelope } from "./envelope.ts";

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
export const InboxDeletedV1 = z.object({ inboxId: z.uuid(), addresses: z.array(z.string()) });
export const AddressAddedV1 = z.object({ inboxId: z.uuid(), address: z.string(), isPrimary: z.boolean() });
export const AddressRemovedV1 = z.object({
  inboxId: z.uuid(),
  address: z.string(),
  /** Set when the removed address was primary: the address that is primary now. */
  newPrimary: z.string().nullable(),
});

export const mailboxEventSchemas = {
  InboxCreated: { 1: InboxCreatedV1 },
  InboxUpdated: { 1: InboxUpdatedV1 },
  InboxDeleted: { 1: InboxDeletedV1 },
  AddressAdded: { 1: AddressAddedV1 },
  AddressRemoved: { 1: AddressRemovedV1 },
} as const;

export type MailboxEvent =
  | { type: "InboxCreated"; schemaVersion: 1; data: z.infer<typeof InboxCreatedV1> }
  | { type: "InboxUpdated"; schemaVersion: 1; data: z.infer<typeof InboxUpdatedV1> }
  | { type: "InboxDeleted"; schemaVersion: 1; data: z.infer<typeof InboxDeletedV1> }
  | { type: "AddressAdded"; schemaVersion: 1; data: z.infer<typeof AddressAddedV1> }
  | { type: "AddressRemoved"; schemaVersion: 1; data: z.infer<typeof AddressRemovedV1> };

export type MailboxEnvelope = Omit<EventEnvelope, "type" | "schemaVersion" | "data"> & MailboxEvent;

export const parseMailboxEvent = (raw: unknown) => parseEventWith<MailboxEnvelope>(mailboxEventSchemas, raw);
