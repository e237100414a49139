import { AppError, notFound } from "@mam/contracts/errors.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { EventDraft } from "./execute.ts";
import { domainUsable, heldBack, ownedBy, type InboxesState, type Quarantine } from "./inbox-state.ts";
import { isReserved, refuseReserved, type ReservedPolicy } from "./reserved-addresses.ts";

export { evolve, initial } from "./inbox-state.ts";

/** `name`, then `name1` … `name99`, as the reference's allocation rule says. */
export const MAX_FALLBACK = 99;

/** Everything the decision needs, the new inbox's id included: made before the lock. */
export interface CreateInbox {
  caller: ScopeClaims;
  inboxId: string;
  tenantId: string;
  workspaceId: string;
  /** The username asked for (or derived from the tenant's name). */
  base: string;
  /**
   * No username was given: `base` is the tenant's name. Reserved, it falls back (support1 for
   * a tenant called Support) instead of being refused; asked again, the same inbox answers,
   * as for a name given (the create is idempotent on the address within the tenant).
   */
  derived?: boolean;
  domain: string;
  /** MAIL_DOMAIN: any other domain must be a custom domain usable in the workspace (see `customDomains`). */
  platformDomain: string;
  /** Only `base` itself, never a fallback. */
  strict: boolean;
  displayName: string | null;
  metadata: Record<string, unknown>;
  /** Addresses other tenants released lately are held back from this one (made from the service clock). */
  quarantine: Quarantine;
  /** Role and system addresses of the platform domain: never a tenant's. */
  reserved: ReservedPolicy;
}

/** Where the new inbox may land, in the order they are tried. */
export function candidates(cmd: Pick<CreateInbox, "base" | "domain" | "strict">): { username: string; address: string }[] {
  const last = cmd.strict ? 0 : MAX_FALLBACK;
  const out: { username: string; address: string }[] = [];
  for (let n = 0; n <= last; n++) {
    const username = n === 0 ? cmd.base : `${cmd.base.slice(0, 64 - String(n).length)}${n}`;
    out.push({ username, address: `${username}@${cmd.domain}` });
  }
  return out;
}

export type Allocation =
  | { kind: "new"; username: string; address: string }
  /** The caller's own inbox at this name (or at a fallback it was given before): asking again returns it. */
  | { kind: "existing"; inboxId: string }
  | { kind: "taken"; username: string }
  /** Free, but released lately by another tenant: held back (under strict). */
  | { kind: "held"; username: string }
  | { kind: "exhausted" };

/**
 * The first candidate that is free (or this command's own), unless one on the way is the
 * caller's. An address another tenant released lately counts as taken.
 */
export function allocate(cmd: CreateInbox, state: InboxesState): Allocation {
  for (const c of candidates(cmd)) {
    // The name asked for is refused when reserved (see decide); a fallback is skipped.
    if (isReserved(c.address, cmd.reserved)) continue;
    const holder = state.claims[c.address];
    if (holder?.inboxId === cmd.inboxId) return { kind: "new", ...c };
    if (!holder) {
      if (!heldBack(state, cmd.quarantine, cmd.tenantId, c.address)) return { kind: "new", ...c };
      if (cmd.strict) return { kind: "held", username: c.username };
      continue;
    }
    if (ownedBy(cmd.caller, holder)) return { kind: "existing", inboxId: holder.inboxId };
    if (cmd.strict) return { kind: "taken", username: c.username };
  }
  return { kind: "exhausted" };
}

/** The refusal of a domain that is neither the platform's nor verified in the workspace: the lockless check and the decision say the same. */
export const notAWorkspaceDomain = (platformDomain: string) =>
  new AppError("VALIDATION_ERROR", `domain must be ${platformDomain} or a verified custom domain of this workspace`, [
    { path: "domain", message: "not a domain of this workspace" },
  ]);

/**
 * Creates the inbox at the allocated address; none when the caller's own inbox is there
 * already. Nothing is created in a workspace that ended (a create that passed identity's
 * check just before the workspace was deleted meets this under the tenant's lock), nor on
 * a custom domain removed since the lockless check (its address would outlive it, and
 * keep the mail of whoever verifies the name next).
 */
export function decide(cmd: CreateInbox, state: InboxesState): EventDraft[] {
  if (state.closed?.[cmd.workspaceId]) throw notFound("Workspace");
  if (!domainUsable(state, cmd.platformDomain, cmd.workspaceId, cmd.domain)) throw notAWorkspaceDomain(cmd.platformDomain);
  if (!cmd.derived) refuseReserved(`${cmd.base}@${cmd.domain}`, cmd.reserved, "username");
  const pick = allocate(cmd, state);
  switch (pick.kind) {
    case "new":
      return [
        {
          event: {
            type: "InboxCreated",
            schemaVersion: 1,
            data: {
              inboxId: cmd.inboxId,
              tenantId: cmd.tenantId,
              workspaceId: cmd.workspaceId,
              username: pick.username,
              domain: cmd.domain,
              address: pick.address,
              displayName: cmd.displayName,
              metadata: cmd.metadata,
            },
          },
          tenantId: cmd.tenantId,
          workspaceId: cmd.workspaceId,
          aggregateId: cmd.inboxId,
          aggregateVersion: 1,
        },
      ];
    case "existing":
      return [];
    case "taken":
    case "held":
    case "exhausted":
      throw refusal(cmd, pick);
    default: {
      const unreachable: never = pick;
      throw new Error(`unhandled allocation ${(unreachable as Allocation).kind}`);
    }
  }
}

export function refusal(cmd: CreateInbox, pick: Extract<Allocation, { kind: "taken" | "held" | "exhausted" }>): AppError {
  switch (pick.kind) {
    case "taken":
      return new AppError("USERNAME_TAKEN", `The username "${pick.username}" is taken on ${cmd.domain}`);
    case "held":
      return new AppError("USERNAME_TAKEN", heldMessage(`${pick.username}@${cmd.domain}`));
    case "exhausted":
      return new AppError("USERNAME_TAKEN", `"${cmd.base}" and ${cmd.base}1 … ${cmd.base}${MAX_FALLBACK} are all taken on ${cmd.domain}`);
    default: {
      const unreachable: never = pick;
      throw new Error(`unhandled refusal ${(unreachable as Allocation).kind}`);
    }
  }
}

/** Says why without saying whose it was or when it went. */
export const heldMessage = (address: string) =>
  `The address ${address} was released recently by another account and is held back for a while, so that its mail (password resets) cannot reach a stranger`;
