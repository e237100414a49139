import { AppError, notFound } from "@mam/contracts/errors.ts";
import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import { mergeMetadata } from "@mam/contracts/mailbox-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { EventDraft } from "./execute.ts";
import { heldMessage } from "./create-inbox-decision.ts";
import { domainUsable, heldBack, inboxVisibleTo, type InboxesState, type InboxState, type Quarantine } from "./inbox-state.ts";
import { refuseReserved, type ReservedPolicy } from "./reserved-addresses.ts";

export { evolve, initial } from "./inbox-state.ts";

/** Commands on an existing inbox: its displayName and metadata, its life, its aliases. */
export type InboxCommand =
  | { type: "UpdateInbox"; caller: ScopeClaims; inboxId: string; displayName?: string | null; metadata?: Record<string, unknown> }
  | { type: "DeleteInbox"; caller: ScopeClaims; inboxId: string }
  | {
      type: "AddAddress";
      caller: ScopeClaims;
      inboxId: string;
      address: string;
      primary: boolean;
      /** MAX_ADDRESSES_PER_INBOX: the inbox's own address included. */
      maxAddresses: number;
      /** MAIL_DOMAIN: an address on any other domain needs a custom domain usable in the inbox's workspace. */
      platformDomain: string;
      quarantine: Quarantine;
      reserved: ReservedPolicy;
    }
  | { type: "RemoveAddress"; caller: ScopeClaims; inboxId: string; address: string };

/** The refusal of an alias on a domain the inbox's workspace may not use: the lockless check and the decision say the same. */
export const domainNotAvailable = (platformDomain: string) =>
  new AppError("VALIDATION_ERROR", `The address must be on ${platformDomain} or a custom domain verified in this workspace`, [
    { path: "email", message: "domain not available to this workspace" },
  ]);

const about = (inbox: InboxState, event: MailboxEvent): EventDraft => ({
  event,
  tenantId: inbox.tenantId,
  workspaceId: inbox.workspaceId,
  aggregateId: inbox.id,
  aggregateVersion: inbox.version + 1,
});

export function decide(cmd: InboxCommand, state: InboxesState): EventDraft[] {
  switch (cmd.type) {
    case "UpdateInbox": {
      // displayName and metadata only: the address identity of an inbox never changes.
      const inbox = inboxVisibleTo(state, cmd.caller, cmd.inboxId);
      // Merged into what the inbox has (PATCH is merge-style); the event carries the result whole.
      const metadata = cmd.metadata === undefined ? undefined : mergeMetadata(inbox.metadata ?? {}, cmd.metadata);
      return [about(inbox, { type: "InboxUpdated", schemaVersion: 1, data: { inboxId: inbox.id, displayName: cmd.displayName, metadata } })];
    }
    case "DeleteInbox": {
      if (cmd.caller.kind !== "tenant" && cmd.caller.kind !== "workspace") throw new AppError("FORBIDDEN", "Only tk_ and wk_ keys can delete inboxes");
      const inbox = inboxVisibleTo(state, cmd.caller, cmd.inboxId);
      return [
        about(inbox, { type: "InboxDeleted", schemaVersion: 1, data: { inboxId: inbox.id, addresses: Object.keys(inbox.addresses), reason: "deleted" } }),
      ];
    }
    case "AddAddress": {
      const inbox = inboxVisibleTo(state, cmd.caller, cmd.inboxId);
      // A custom domain removed since the lockless check is missing from what load read under the lock.
      const domain = cmd.address.slice(cmd.address.lastIndexOf("@") + 1);
      if (!domainUsable(state, cmd.platformDomain, inbox.workspaceId, domain)) throw domainNotAvailable(cmd.platformDomain);
      refuseReserved(cmd.address, cmd.reserved, "email");
      // Held by anyone, this inbox included, the answer is the same.
      if (state.claims[cmd.address]) throw new AppError("CONFLICT", `The address ${cmd.address} already exists`);
      if (heldBack(state, cmd.quarantine, inbox.tenantId, cmd.address)) throw new AppError("CONFLICT", heldMessage(cmd.address));
      if (Object.keys(inbox.addresses).length >= cmd.maxAddresses) {
        throw new AppError("CONFLICT", `An inbox may have at most ${cmd.maxAddresses} addresses, its own included: remove an alias first`);
      }
      return [about(inbox, { type: "AddressAdded", schemaVersion: 1, data: { inboxId: inbox.id, address: cmd.address, isPrimary: cmd.primary } })];
    }
    case "RemoveAddress": {
      const inbox = inboxVisibleTo(state, cmd.caller, cmd.inboxId);
      const address = inbox.addresses[cmd.address];
      if (!address) throw notFound("Address");
      if (address.isCanonical) throw new AppError("CONFLICT", "The canonical address of an inbox cannot be removed");
      // The primary going, the canonical address is primary again.
      const newPrimary = address.isPrimary ? inbox.canonicalEmail : null;
      return [about(inbox, { type: "AddressRemoved", schemaVersion: 1, data: { inboxId: inbox.id, address: cmd.address, newPrimary } })];
    }
    default: {
      const unreachable: never = cmd;
      throw new Error(`unhandled inbox command ${(unreachable as InboxCommand).type}`);
    }
  }
}
