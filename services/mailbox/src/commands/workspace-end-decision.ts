import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { Placement } from "@mam/scope/access.ts";
import type { EventDraft } from "./execute.ts";
import { evolve as evolveInboxes, initial as initialInboxes, type InboxesState, type InboxState, type TimedEvent } from "./inbox-state.ts";

/** Identity deleted this workspace: the mailbox ends everything in it. */
export interface EndWorkspace {
  tenantId: string;
  workspaceId: string;
  /**
   * At most this many inboxes and domains ended by one decision: a large workspace ends in
   * several commits (each well inside Postgres's bind-parameter limit), the first closing it.
   */
  batch?: number;
}

/** A live custom domain, as the cascade releases it. */
export interface LiveDomain {
  id: string;
  name: string;
  version: number;
  tenantId: string;
  workspaceId: string;
}

/** What the cascade is decided against: the workspace's live inboxes and domains, and whether it was closed already. */
export interface WorkspaceEndState extends InboxesState {
  domains: Record<string, LiveDomain>;
}

export const initial = (): WorkspaceEndState => ({ ...initialInboxes(), domains: {} });

/** Folded from history, a DomainAdded comes with its envelope's tenant and workspace. */
export type PlacedEvent = TimedEvent & { at?: Placement };

/**
 * Closes the workspace (nothing is created in it from now on), deletes each of its live
 * inboxes (their addresses refuse mail and go into quarantine) and releases each of its
 * domains. Decided again (a redelivery, a restart halfway), it finds them gone and the
 * workspace closed: nothing twice.
 */
export function decide(cmd: EndWorkspace, state: WorkspaceEndState): EventDraft[] {
  const at = { tenantId: cmd.tenantId, workspaceId: cmd.workspaceId };
  const inWorkspace = (x: { tenantId: string; workspaceId: string }) => x.tenantId === cmd.tenantId && x.workspaceId === cmd.workspaceId;
  const drafts: EventDraft[] = [];
  if (!state.closed?.[cmd.workspaceId]) {
    drafts.push({ event: { type: "WorkspaceClosed", schemaVersion: 1, data: at }, ...at, aggregateId: cmd.workspaceId, aggregateVersion: 1 });
  }
  const inboxes = Object.values(state.inboxes)
    .filter(inWorkspace)
    .sort((a, b) => a.id.localeCompare(b.id));
  const domains = Object.values(state.domains)
    .filter(inWorkspace)
    .sort((a, b) => a.id.localeCompare(b.id));
  const ends: EventDraft[] = [
    ...inboxes.map(inboxDeleted),
    ...domains.map(
      (d): EventDraft => ({
        event: { type: "DomainRemoved", schemaVersion: 1, data: { domainId: d.id, domain: d.name, reason: "workspace_deleted" } },
        ...at,
        aggregateId: d.id,
        aggregateVersion: d.version + 1,
      }),
    ),
  ];
  return [...drafts, ...ends.slice(0, cmd.batch ?? ends.length)];
}

const inboxDeleted = (inbox: InboxState): EventDraft => ({
  event: { type: "InboxDeleted", schemaVersion: 1, data: { inboxId: inbox.id, addresses: Object.keys(inbox.addresses), reason: "workspace_deleted" } },
  tenantId: inbox.tenantId,
  workspaceId: inbox.workspaceId,
  aggregateId: inbox.id,
  aggregateVersion: inbox.version + 1,
});

type DomainEvent = Extract<MailboxEvent, { type: "DomainAdded" | "DomainChecked" | "DomainRemoved" }>;
const isDomainEvent = (e: MailboxEvent): e is DomainEvent => e.type === "DomainAdded" || e.type === "DomainChecked" || e.type === "DomainRemoved";

export function evolve(state: WorkspaceEndState, e: PlacedEvent): WorkspaceEndState {
  if (!isDomainEvent(e)) return { ...state, ...evolveInboxes(state, e) };
  switch (e.type) {
    case "DomainAdded": {
      if (!e.at) throw new Error("a DomainAdded is folded with its envelope's tenant and workspace");
      const domain: LiveDomain = { id: e.data.domainId, name: e.data.domain, version: 1, ...e.at };
      return { ...state, domains: { ...state.domains, [domain.id]: domain } };
    }
    case "DomainChecked": {
      const d = state.domains[e.data.domainId];
      return d ? { ...state, domains: { ...state.domains, [d.id]: { ...d, version: d.version + 1 } } } : state;
    }
    case "DomainRemoved": {
      const { [e.data.domainId]: _gone, ...domains } = state.domains;
      return { ...state, domains };
    }
    default: {
      const unreachable: never = e;
      throw new Error(`unhandled domain event ${(unreachable as DomainEvent).type}`);
    }
  }
}
