import { AppError, notFound } from "@mam/contracts/errors.ts";
import { MAX_DOMAINS_PER_WORKSPACE } from "@mam/contracts/domains-api.ts";
import type { DnsRecord, MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { seesWorkspace, type Placement } from "@mam/scope/access.ts";
import type { EventDraft } from "./execute.ts";
import { evolve as evolveInboxes, type InboxesState } from "./inbox-state.ts";

export interface DomainState {
  id: string;
  name: string;
  status: "pending" | "verified" | "failed";
  records: DnsRecord[];
  version: number;
  tenantId: string;
  workspaceId: string;
}

/**
 * `load` reads the live domains a command names (by id or name, whoever's they are) or, for
 * a new one, those of the workspace it would join, and the claims on the name and of
 * addresses on the domain; the decision says whether the caller sees them.
 */
export interface DomainsState extends InboxesState {
  domains: Record<string, DomainState>;
  /** Which domain holds a name, across all workspaces. */
  domainClaims: Record<string, string>;
}

export type DomainCommand =
  | {
      type: "AddDomain";
      tenantId: string;
      workspaceId: string;
      domainId: string;
      domain: string;
      selector: string;
      dkimPublicKey: string;
      records: DnsRecord[];
    }
  /** `ref`: the domain's id or its name, lower-case. `checked`: what the DNS said just now. */
  | { type: "CheckDomain"; caller: ScopeClaims; ref: string; checked: { status: "pending" | "verified"; records: DnsRecord[] } }
  | { type: "RemoveDomain"; caller: ScopeClaims; ref: string };

/**
 * A domain event does not say whose domain it is (its envelope does): folded from history,
 * a DomainAdded comes with the tenant and workspace of its envelope.
 */
export type PlacedEvent = MailboxEvent & { at?: Placement };

export const initial = (): DomainsState => ({ inboxes: {}, claims: {}, domains: {}, domainClaims: {} });

const about = (d: Pick<DomainState, "id" | "version" | "tenantId" | "workspaceId">, event: MailboxEvent): EventDraft => ({
  event,
  tenantId: d.tenantId,
  workspaceId: d.workspaceId,
  aggregateId: d.id,
  aggregateVersion: d.version + 1,
});

/** A live domain the caller sees, by id or by name; anything else is the same 404. */
function domainOf(state: DomainsState, caller: ScopeClaims, ref: string): DomainState {
  const d = Object.values(state.domains).find((x) => (x.id === ref || x.name === ref) && seesWorkspace(caller, x));
  if (!d || caller.inboxId) throw notFound("Domain");
  return d;
}

export function decide(cmd: DomainCommand, state: DomainsState): EventDraft[] {
  switch (cmd.type) {
    case "AddDomain": {
      const inWorkspace = Object.values(state.domains).filter((d) => d.workspaceId === cmd.workspaceId).length;
      if (inWorkspace >= MAX_DOMAINS_PER_WORKSPACE) throw new AppError("CONFLICT", `A workspace holds at most ${MAX_DOMAINS_PER_WORKSPACE} domains`);
      // Whoever has it, the answer is the same: the domain is not available.
      if (state.domainClaims[cmd.domain]) throw new AppError("CONFLICT", `${cmd.domain} is already registered`);
      const data = { domainId: cmd.domainId, domain: cmd.domain, selector: cmd.selector, dkimPublicKey: cmd.dkimPublicKey, records: cmd.records };
      return [about({ id: cmd.domainId, version: 0, tenantId: cmd.tenantId, workspaceId: cmd.workspaceId }, { type: "DomainAdded", schemaVersion: 1, data })];
    }
    case "CheckDomain": {
      const d = domainOf(state, cmd.caller, cmd.ref);
      // Only a change is recorded: status, or any record's.
      if (d.status === cmd.checked.status && JSON.stringify(d.records) === JSON.stringify(cmd.checked.records)) return [];
      return [about(d, { type: "DomainChecked", schemaVersion: 1, data: { domainId: d.id, ...cmd.checked } })];
    }
    case "RemoveDomain": {
      const d = domainOf(state, cmd.caller, cmd.ref);
      if (Object.keys(state.claims).some((address) => address.endsWith(`@${d.name}`))) {
        throw new AppError("CONFLICT", `${d.name} is still used by inbox addresses; remove them first`);
      }
      return [about(d, { type: "DomainRemoved", schemaVersion: 1, data: { domainId: d.id, domain: d.name } })];
    }
    default: {
      const unreachable: never = cmd;
      throw new Error(`unhandled domain command ${(unreachable as DomainCommand).type}`);
    }
  }
}

type DomainEvent = Extract<PlacedEvent, { type: "DomainAdded" | "DomainChecked" | "DomainRemoved" }>;
const DOMAIN_EVENTS: ReadonlySet<string> = new Set<DomainEvent["type"]>(["DomainAdded", "DomainChecked", "DomainRemoved"]);
const isDomainEvent = (e: PlacedEvent): e is DomainEvent => DOMAIN_EVENTS.has(e.type);

export function evolve(state: DomainsState, e: PlacedEvent): DomainsState {
  if (!isDomainEvent(e)) return { ...state, ...evolveInboxes(state, e) };
  switch (e.type) {
    case "DomainAdded": {
      if (!e.at) throw new Error("a DomainAdded is folded with its envelope's tenant and workspace");
      const d = e.data;
      const domain: DomainState = { id: d.domainId, name: d.domain, status: "pending", records: d.records, version: 1, ...e.at };
      return { ...state, domains: { ...state.domains, [d.domainId]: domain }, domainClaims: { ...state.domainClaims, [d.domain]: d.domainId } };
    }
    case "DomainChecked": {
      const d = state.domains[e.data.domainId];
      if (!d) return state;
      const checked = { ...d, status: e.data.status, records: e.data.records, version: d.version + 1 };
      return { ...state, domains: { ...state.domains, [d.id]: checked } };
    }
    case "DomainRemoved": {
      const { [e.data.domainId]: _gone, ...domains } = state.domains;
      const claims = Object.entries(state.domainClaims).filter(([name, id]) => !(name === e.data.domain && id === e.data.domainId));
      return { ...state, domains, domainClaims: Object.fromEntries(claims) };
    }
    default: {
      const unreachable: never = e;
      throw new Error(`unhandled domain event ${(unreachable as DomainEvent).type}`);
    }
  }
}
