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
  /** What a metadata PATCH merges into (absent where no command reads it). */
  metadata?: Record<string, unknown>;
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
  /** Addresses given up and not claimed since: by which tenant, when (null: a history folded without times). */
  released?: Record<string, Release>;
  /** Workspaces that ended: nothing is created in them. */
  closed?: Record<string, true>;
  /**
   * Custom domains that inboxes and aliases of a workspace may use (live, verified there by
   * the name's owner), by workspace, as `load` read them under the tenant's lock: a domain
   * removed since a lockless check is missing here, and the decision refuses its addresses.
   */
  customDomains?: Record<string, string[]>;
}

export interface Release {
  tenantId: string;
  at: string | null;
}

export const initial = (): InboxesState => ({ inboxes: {}, claims: {}, released: {}, closed: {} });

/**
 * An event as decisions fold it: when it happened comes from its envelope (load reads it
 * from the read model), and only the quarantine of released addresses needs it.
 */
export type TimedEvent = MailboxEvent & { occurredAt?: string };

/**
 * Who may not take a released address yet: tenants other than the one that gave it up, for
 * addresses of `domain` (the platform's; a custom domain's owner controls its mail anyway)
 * released at or after `since`. Null: no quarantine.
 */
export type Quarantine = { domain: string; since: string } | null;

/** Whether a free address is held back from `tenantId` by its quarantine. */
export function heldBack(state: InboxesState, quarantine: Quarantine, tenantId: string, address: string): boolean {
  const r = state.released?.[address];
  if (!r || !quarantine || r.tenantId === tenantId) return false;
  if (address.slice(address.lastIndexOf("@") + 1) !== quarantine.domain) return false;
  return r.at === null || new Date(r.at).getTime() >= new Date(quarantine.since).getTime();
}

/** Whether addresses on `domain` may be given out in this workspace: the platform's own domain, or a custom domain loaded as usable there. */
export function domainUsable(state: InboxesState, platformDomain: string, workspaceId: string, domain: string): boolean {
  return domain === platformDomain || (state.customDomains?.[workspaceId]?.includes(domain) ?? false);
}

/** The quarantine in force at `now` for addresses of `domain`: `days` back from now. */
export function quarantineAt(now: Date, domain: string, days: number): Quarantine {
  return days > 0 ? { domain, since: new Date(now.getTime() - days * 86_400_000).toISOString() } : null;
}

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
export type InboxEvent = Extract<
  TimedEvent,
  { type: "InboxCreated" | "InboxUpdated" | "InboxDeleted" | "AddressAdded" | "AddressRemoved" | "WorkspaceClosed" }
>;
const INBOX_EVENTS: ReadonlySet<string> = new Set<InboxEvent["type"]>([
  "InboxCreated",
  "InboxUpdated",
  "InboxDeleted",
  "AddressAdded",
  "AddressRemoved",
  "WorkspaceClosed",
]);
export const isInboxEvent = (e: TimedEvent): e is InboxEvent => INBOX_EVENTS.has(e.type);

/** Folds an event into the inboxes and address claims; any other event leaves them as they are. */
export function evolve(state: InboxesState, e: TimedEvent): InboxesState {
  if (!isInboxEvent(e)) return state;
  const next = evolveClaims(state, e);
  return { ...next, released: releasedAfter(state, next, e) };
}

function evolveClaims(state: InboxesState, e: InboxEvent): InboxesState {
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
        metadata: d.metadata,
      };
      const holder = { tenantId: d.tenantId, workspaceId: d.workspaceId, inboxId: d.inboxId };
      return { ...state, inboxes: { ...state.inboxes, [d.inboxId]: inbox }, claims: { ...state.claims, [d.address]: holder } };
    }
    case "InboxUpdated": {
      // The whole metadata after the update (a PATCH's merge is made by the decision).
      const { metadata } = e.data;
      return withInbox(state, e.data.inboxId, (i) => (metadata === undefined ? i : { ...i, metadata }));
    }
    case "InboxDeleted": {
      const { [e.data.inboxId]: _gone, ...inboxes } = state.inboxes;
      return { ...state, inboxes, claims: without(state.claims, (h) => h.inboxId === e.data.inboxId) };
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
    case "WorkspaceClosed":
      return { ...state, closed: { ...state.closed, [e.data.workspaceId]: true } };
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

/** Claims an event ended are released (by their holder's tenant, at the event's time); a new claim ends a release. */
function releasedAfter(before: InboxesState, after: InboxesState, e: TimedEvent): Record<string, Release> {
  const released = { ...before.released };
  for (const [address, h] of Object.entries(before.claims)) {
    if (!after.claims[address]) released[address] = { tenantId: h.tenantId, at: e.occurredAt ?? null };
  }
  for (const address of Object.keys(after.claims)) delete released[address];
  return released;
}
