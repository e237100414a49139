import type { Part } from "@mam/service-kit/service.ts";
import { sql, type Kysely, type Selectable } from "kysely";
import type { MailboxContext } from "../context.ts";
import type { DomainsTable, MailboxDb } from "../db/schema.ts";
import { decide, initial, type ClaimClock, type DomainCommand, type DomainState, type DomainsState } from "./domain-decisions.ts";
import { execute, type CommandMeta, type EventDraft } from "./execute.ts";

/** What a domain decision needs of the clock and the settings. */
export const claimClock = (ctx: MailboxContext): ClaimClock => ({ now: ctx.clock().toISOString(), claimTtlDays: ctx.cfg.DOMAIN_CLAIM_TTL_DAYS });

/** The private key goes with its domain: the key store is not a projection, nothing else removes it. */
export async function forgetKeysOfRemoved(tx: Kysely<MailboxDb>, events: EventDraft[]): Promise<void> {
  const removed = events.filter((d) => d.event.type === "DomainRemoved").map((d) => d.aggregateId);
  if (removed.length) await tx.deleteFrom("dkim_keys").where("key_ref", "in", removed).execute();
}

export const STATE_COLUMNS = ["domain_id", "domain", "status", "records", "version", "tenant_id", "workspace_id", "created_at", "verified_at"] as const;
type StateRow = Pick<Selectable<DomainsTable>, (typeof STATE_COLUMNS)[number]>;

export const toState = (r: StateRow): DomainState => ({
  id: r.domain_id,
  name: r.domain,
  status: r.status,
  records: r.records,
  version: r.version,
  tenantId: r.tenant_id,
  workspaceId: r.workspace_id,
  addedAt: new Date(r.created_at).toISOString(),
  proven: r.verified_at !== null,
});

/**
 * Serialises, across tenants, the commands that change who may hold a name: adding a claim,
 * verifying one, releasing them. Taken after the tenant's lock (every command takes that
 * first), so no two wait on each other in opposite orders. Without it, a claim added while
 * another tenant's verification commits could miss that verification's release.
 */
async function lockName(tx: Kysely<MailboxDb>, domain: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`mailbox-domain-name:${domain}`}, 0))`.execute(tx);
}

/**
 * Every tenant's claims of a name that were not removed (lapsed ones too), and its owner:
 * the decision picks the one the caller sees and says which have lapsed.
 */
export async function loadNamed(tx: Kysely<MailboxDb>, domain: string, state = initial()): Promise<DomainsState> {
  await lockName(tx, domain);
  const rows = await tx.selectFrom("domains").select(STATE_COLUMNS).where("deleted_at", "is", null).where("domain", "=", domain).execute();
  for (const r of rows) state.domains[r.domain_id] = toState(r);
  const owner = await tx.selectFrom("domain_claims").select("domain_id").where("domain", "=", domain).executeTakeFirst();
  if (owner) state.domainClaims[domain] = owner.domain_id;
  return state;
}

/**
 * Records the end of a tenant's lapsed claims of a name (expired, or owned by another
 * tenant since), under that tenant's lock. Never fails its caller: until it has run, the
 * read model hides such claims anyway (`liveDomain`), and the next caller tries again.
 */
export async function releaseLapsedClaims(ctx: MailboxContext, tenantId: string, domain: string, requestId: string): Promise<void> {
  const command: DomainCommand = { type: "ReleaseDomainClaims", tenantId, domain, ...claimClock(ctx) };
  const system: CommandMeta = { actor: { type: "system", id: null }, requestId };
  try {
    await execute(ctx, tenantId, system, {
      load: (tx) => loadNamed(tx, domain),
      decide: (state) => decide(command, state),
      answer: (tx, _state, events) => forgetKeysOfRemoved(tx, events),
    });
  } catch (err) {
    ctx.logger.warn({ err, domain, tenantId }, "could not release a lapsed domain claim");
  }
}

/**
 * Ends every other tenant's claim of a name someone owns. Each tenant's events are decided
 * under that tenant's lock: the relay keeps a tenant's order only so.
 */
export async function releaseOtherClaims(ctx: MailboxContext, domain: string, ownerTenant: string, meta: CommandMeta): Promise<void> {
  const others = await ctx.db
    .selectFrom("domains")
    .select("tenant_id")
    .distinct()
    .where("domain", "=", domain)
    .where("deleted_at", "is", null)
    .where("tenant_id", "<>", ownerTenant)
    .execute();
  for (const { tenant_id: tenantId } of others) await releaseLapsedClaims(ctx, tenantId, domain, meta.requestId);
}

/**
 * Claims that have lapsed (unverified past DOMAIN_CLAIM_TTL_DAYS, or outlived by another
 * tenant's verified ownership of the name, e.g. after a crash between the verification and
 * the releases) but that no command has met yet: released now, with their private keys.
 * Every replica may run it; a release already made is decided as nothing.
 */
export async function sweepLapsedClaims(ctx: MailboxContext, limit = 500): Promise<number> {
  const cutoff = new Date(ctx.clock().getTime() - ctx.cfg.DOMAIN_CLAIM_TTL_DAYS * 86_400_000);
  const rows = await ctx.db
    .selectFrom("domains as d")
    .leftJoin("domain_claims as c", "c.domain", "d.domain")
    .select(["d.tenant_id", "d.domain"])
    .distinct()
    .where("d.deleted_at", "is", null)
    .where((eb) =>
      eb.or([
        // Nobody owns the name and this unverified claim is past its time (a verified one
        // never expires, see `lapsed`: its private key must not go)...
        eb.and([eb("c.domain_id", "is", null), eb("d.verified_at", "is", null), eb("d.created_at", "<", cutoff)]),
        // ...or someone else owns it.
        eb.and([eb("c.domain_id", "is not", null), eb("c.domain_id", "<>", eb.ref("d.domain_id"))]),
      ]),
    )
    .limit(limit)
    .execute();
  for (const r of rows) await releaseLapsedClaims(ctx, r.tenant_id, r.domain, ctx.newId());
  return rows.length;
}

/** Runs the sweep at start and then hourly; stopping waits for a sweep under way. */
export function lapsedClaimSweeper(ctx: MailboxContext, everyMs = 3_600_000): Part {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  const tick = () => {
    running = sweepLapsedClaims(ctx).catch((err: unknown) =>
      ctx.logger.warn({ err: (err as Error).message }, "lapsed domain claims sweep failed; next hour again"),
    );
  };
  return {
    start: () => {
      tick();
      timer = setInterval(tick, everyMs);
      timer.unref();
    },
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
