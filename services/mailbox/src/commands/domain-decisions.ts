import { AppError, notFound } from "@mam/contracts/errors.ts";
import { MAX_DOMAINS_PER_WORKSPACE } from "@mam/contracts/domains-api.ts";
import type { DnsRecord, DomainReleaseReason, MailboxEvent } from "@mam/contracts/mailbox-events.ts";
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
  /** When the claim was made (its DomainAdded): an unverified claim lapses a TTL later. */
  addedAt: string;
  /** Whether a DNS check ever verified it (a later failed check does not undo that). */
  proven?: boolean;
}

/**
 * `load` reads the live domains a command names (by id or name, whoever's they are) or, for
 * a new one, those of the workspace it would join, and the claims on the name and of
 * addresses on the domain; the decision says whether the caller sees them.
 */
export interface DomainsState extends InboxesState {
  domains: Record<string, DomainState>;
  /**
   * Which domain owns a name, across all tenants: the first claim whose DNS proof verified.
   * Unverified claims own nothing; several tenants may hold one each.
   */
  domainClaims: Record<string, string>;
}

/** The decision's clock: what "now" is and how long an unverified claim holds (DOMAIN_CLAIM_TTL_DAYS). */
export interface ClaimClock {
  now: string;
  claimTtlDays: number;
}

export type DomainCommand =
  | ({
      type: "AddDomain";
      tenantId: string;
      workspaceId: string;
      domainId: string;
      domain: string;
      selector: string;
      dkimPublicKey: string;
      records: DnsRecord[];
    } & ClaimClock)
  /** `ref`: the domain's id or its name, lower-case. `checked`: what the DNS said just now. */
  | ({ type: "CheckDomain"; caller: ScopeClaims; ref: string; checked: { status: "pending" | "verified"; records: DnsRecord[] } } & ClaimClock)
  | ({ type: "RemoveDomain"; caller: ScopeClaims; ref: string } & ClaimClock)
  /** Ends the tenant's claims on `domain` that no longer hold: lapsed, or owned by another tenant since. */
  | ({ type: "ReleaseDomainClaims"; tenantId: string; domain: string } & ClaimClock);

/**
 * A domain event does not say whose domain it is, nor when (its envelope does): folded from
 * history, a DomainAdded comes with the tenant and workspace of its envelope and its time.
 */
export type PlacedEvent = MailboxEvent & { at?: Placement; occurredAt?: string };

export const initial = (): DomainsState => ({ inboxes: {}, claims: {}, domains: {}, domainClaims: {} });

const about = (d: Pick<DomainState, "id" | "version" | "tenantId" | "workspaceId">, event: MailboxEvent): EventDraft => ({
  event,
  tenantId: d.tenantId,
  workspaceId: d.workspaceId,
  aggregateId: d.id,
  aggregateVersion: d.version + 1,
});

const DAY_MS = 86_400_000;

/**
 * Why a claim no longer holds, or null while it does. The owner's claim always holds; an
 * unverified one ends when another claim of the name proves DNS control, or once it is
 * `claimTtlDays` old. A pure function of the clock: the read model hides such a claim at
 * once (see `liveDomain` in read/domains.ts), and the next command that meets it records why.
 *
 * A verified claim never expires. Decided in commit order, a claim verifies only by becoming
 * the owner; one that finds no owner is met in a read model rebuilt with tenants' events
 * interleaved otherwise (its proof applied before the removal of the claim that owned the
 * name then, which hands the name over to it). Expiring it would delete its private key for good.
 */
export function lapsed(state: Pick<DomainsState, "domainClaims">, d: DomainState, clock: ClaimClock): DomainReleaseReason | null {
  const owner = state.domainClaims[d.name];
  if (owner === d.id) return null;
  if (owner) return "verified_elsewhere";
  if (d.status === "verified" || d.proven) return null;
  return Date.parse(d.addedAt) + clock.claimTtlDays * DAY_MS <= Date.parse(clock.now) ? "expired" : null;
}

const live = (state: DomainsState, clock: ClaimClock) => Object.values(state.domains).filter((d) => lapsed(state, d, clock) === null);

/** A live domain the caller sees, by id or by name; anything else (a lapsed claim too) is the same 404. */
function domainOf(state: DomainsState, cmd: { caller: ScopeClaims; ref: string } & ClaimClock): DomainState {
  const d = live(state, cmd).find((x) => (x.id === cmd.ref || x.name === cmd.ref) && seesWorkspace(cmd.caller, x));
  if (!d || cmd.caller.inboxId) throw notFound("Domain");
  return d;
}

const released = (d: DomainState, reason: DomainReleaseReason): EventDraft =>
  about(d, { type: "DomainRemoved", schemaVersion: 1, data: { domainId: d.id, domain: d.name, reason } });

/** The tenant's claims on the name that lapsed, each released with its reason. */
function lapsedClaims(state: DomainsState, tenantId: string, domain: string, clock: ClaimClock): EventDraft[] {
  return Object.values(state.domains).flatMap((d) => {
    const reason = d.tenantId === tenantId && d.name === domain ? lapsed(state, d, clock) : null;
    return reason ? [released(d, reason)] : [];
  });
}

export function decide(cmd: DomainCommand, state: DomainsState): EventDraft[] {
  switch (cmd.type) {
    case "AddDomain": {
      // A workspace that ended refuses new domains, also when identity still knew it a moment ago.
      if (state.closed?.[cmd.workspaceId]) throw new AppError("NOT_FOUND", "Workspace not found");
      const current = live(state, cmd);
      const inWorkspace = current.filter((d) => d.workspaceId === cmd.workspaceId).length;
      if (inWorkspace >= MAX_DOMAINS_PER_WORKSPACE) throw new AppError("CONFLICT", `A workspace holds at most ${MAX_DOMAINS_PER_WORKSPACE} domains`);
      const owner = state.domains[state.domainClaims[cmd.domain] ?? ""];
      if (owner && owner.tenantId !== cmd.tenantId) {
        throw new AppError("CONFLICT", `${cmd.domain} is already registered: another account has verified it in DNS`);
      }
      // The tenant's own claim (verified, or not yet lapsed) holds the name in all its workspaces.
      if (current.some((d) => d.tenantId === cmd.tenantId && d.name === cmd.domain)) throw new AppError("CONFLICT", `${cmd.domain} is already registered`);
      // Other tenants' unverified claims do not hold it: each claim has its own DKIM key to prove.
      const data = { domainId: cmd.domainId, domain: cmd.domain, selector: cmd.selector, dkimPublicKey: cmd.dkimPublicKey, records: cmd.records };
      return [
        ...lapsedClaims(state, cmd.tenantId, cmd.domain, cmd),
        about({ id: cmd.domainId, version: 0, tenantId: cmd.tenantId, workspaceId: cmd.workspaceId }, { type: "DomainAdded", schemaVersion: 1, data }),
      ];
    }
    case "CheckDomain": {
      const d = domainOf(state, cmd);
      // Only a change is recorded: status, or any record's.
      if (d.status === cmd.checked.status && JSON.stringify(d.records) === JSON.stringify(cmd.checked.records)) return [];
      return [about(d, { type: "DomainChecked", schemaVersion: 1, data: { domainId: d.id, ...cmd.checked } })];
    }
    case "RemoveDomain": {
      const d = domainOf(state, cmd);
      if (Object.keys(state.claims).some((address) => address.endsWith(`@${d.name}`))) {
        throw new AppError("CONFLICT", `${d.name} is still used by inbox addresses; remove them first`);
      }
      return [about(d, { type: "DomainRemoved", schemaVersion: 1, data: { domainId: d.id, domain: d.name } })];
    }
    case "ReleaseDomainClaims":
      return lapsedClaims(state, cmd.tenantId, cmd.domain, cmd);
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
      if (!e.at || !e.occurredAt) throw new Error("a DomainAdded is folded with its envelope's tenant, workspace and time");
      const d = e.data;
      const domain: DomainState = { id: d.domainId, name: d.domain, status: "pending", records: d.records, version: 1, ...e.at, addedAt: e.occurredAt };
      return { ...state, domains: { ...state.domains, [d.domainId]: domain } };
    }
    case "DomainChecked": {
      const d = state.domains[e.data.domainId];
      if (!d) return state;
      const checked = { ...d, status: e.data.status, records: e.data.records, version: d.version + 1, proven: d.proven || e.data.status === "verified" };
      // The first proof owns the name for good (a later lapse of the DNS records does not free it).
      const owns = e.data.status === "verified" && !state.domainClaims[d.name];
      return {
        ...state,
        domains: { ...state.domains, [d.id]: checked },
        domainClaims: owns ? { ...state.domainClaims, [d.name]: d.id } : state.domainClaims,
      };
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
