import { notFound } from "@mam/contracts/errors.ts";
import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { seesWorkspace } from "@mam/scope/access.ts";

/** Who holds an address: one inbox, across all tenants. */
export interface Holder {
  tenantId: string;
  workspaceId: string;
  inboxId: string;
}

export interface InboxState {
  id: string;
  tenantId: string;
  workspaceId: string;
  canonicalEmail: string;
  /** The aggregate's version: one more with each event about the inbox. */
  version: number;
  addresses: Record<string, { isPrimary: boolean; isCanonical: boolean }>;
}

/**
 * What inbox and address decisions are made against. `load` reads only the part a
 * command is about (one inbox, the claims of some addresses); `evolve` folds the whole
 * history, and a decision reads both the same way.
 */
export interface InboxesState {
  /** Live inboxes: a deleted one is as missing as one that never was. */
  inboxes: Record<string, InboxState>;
  claims: Record<string, Holder>;
}

export const initial = (): InboxesState => ({ inboxes: {}, claims: {} });

/** The live inbox if the caller may see it: its workspace, and for an ak_ key that very inbox. */
export function inboxVisibleTo(state: InboxesState, caller: ScopeClaims, inboxId: string): InboxState {
  const inbox = state.inboxes[inboxId];
  const sees = inbox && seesWorkspace(caller, inbox) && (caller.inboxId === null || caller.inboxId === inbox.id);
  if (!sees) throw notFound("Inbox");
  return inbox;
}

/** True when `holder` is an inbox of the caller's (its tenant, a workspace it sees). */
export const ownedBy = (caller: ScopeClaims, holder: Holder) => holder.tenantId === caller.tenantId && seesWorkspace(caller, holder);

/** The events that change what inbox decisions read; deciders of other things fold the rest themselves. */
export type InboxEvent = Extract<MailboxEvent, { type: "InboxCreated" | "InboxUpdated" | "InboxDeleted" | "AddressAdded" | "AddressRemoved" }>;
const INBOX_EVENTS: ReadonlySet<string> = new Set<InboxEvent["type"]>(["InboxCreated", "InboxUpdated", "InboxDeleted", "AddressAdded", "AddressRemoved"]);
export const isInboxEvent = (e: MailboxEvent): e is InboxEvent => INBOX_EVENTS.has(e.type);

/** Folds an event into the inboxes and address claims; any other event leaves them as they are. */
export function evolve(state: InboxesState, e: MailboxEvent): InboxesState {
  if (!isInboxEvent(e)) return state;
  switch (e.type) {
    case "InboxCreated": {
      const d = e.data;
      const inbox: InboxState = {
        id: d.inboxId,
        tenantId: d.tenantId,
        workspaceId: d.workspaceId,
        canonicalEmail: d.address,
        version: 1,
        addresses: { [d.address]: { isPrimary: true, isCanonical: true } },
      };
      const holder = { tenantId: d.tenantId, workspaceId: d.workspaceId, inboxId: d.inboxId };
      return { inboxes: { ...state.inboxes, [d.inboxId]: inbox }, claims: { ...state.claims, [d.address]: holder } };
    }
    case "InboxUpdated":
      return withInbox(state, e.data.inboxId, (i) => i);
    case "InboxDeleted": {
      const { [e.data.inboxId]: _gone, ...inboxes } = state.inboxes;
      return { inboxes, claims: without(state.claims, (h) => h.inboxId === e.data.inboxId) };
    }
    case "AddressAdded": {
      const d = e.data;
      const inbox = state.inboxes[d.inboxId];
      const next = withInbox(state, d.inboxId, (i) => {
        const addresses = Object.fromEntries(Object.entries(i.addresses).map(([a, x]) => [a, { ...x, isPrimary: x.isPrimary && !d.isPrimary }]));
        return { ...i, addresses: { ...addresses, [d.address]: { isPrimary: d.isPrimary, isCanonical: false } } };
      });
      if (!inbox) return next;
      return { ...next, claims: { ...next.claims, [d.address]: { tenantId: inbox.tenantId, workspaceId: inbox.workspaceId, inboxId: inbox.id } } };
    }
    case "AddressRemoved": {
      const d = e.data;
      const next = withInbox(state, d.inboxId, (i) => {
        const { [d.address]: _gone, ...addresses } = i.addresses;
        const primary = d.newPrimary ? addresses[d.newPrimary] : undefined;
        return { ...i, addresses: primary ? { ...addresses, [d.newPrimary!]: { ...primary, isPrimary: true } } : addresses };
      });
      return { ...next, claims: without(next.claims, (h, address) => address === d.address && h.inboxId === d.inboxId) };
    }
    default: {
      const unreachable: never = e;
      throw new Error(`unhandled inbox event ${(unreachable as InboxEvent).type}`);
    }
  }
}

/** An event about an inbox: its version moves on, whatever else changes. */
function withInbox(state: InboxesState, inboxId: string, change: (i: InboxState) => InboxState): InboxesState {
  const inbox = state.inboxes[inboxId];
  if (!inbox) return state;
  return { ...state, inboxes: { ...state.inboxes, [inboxId]: { ...change(inbox), version: inbox.version + 1 } } };
}

function without(claims: Record<string, Holder>, drop: (h: Holder, address: string) => boolean): Record<string, Holder> {
  return Object.fromEntries(Object.entries(claims).filter(([address, h]) => !drop(h, address)));
}
