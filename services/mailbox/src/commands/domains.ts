import type { Kysely } from "kysely";
import { AppError, parseOrThrow } from "@mam/contracts/errors.ts";
import { AddDomainCommand, CreateDomainBody, DomainRef, type Domain } from "@mam/contracts/domains-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import { checkRecords, makeResolver } from "../dns/verify.ts";
import { expectedRecords, newDkimKey } from "../dns/records.ts";
import { domainKey, domainView, isDomainId, requireDomainManager, visibleDomain, type DomainRow } from "../read/domains.ts";
import { decide, initial, type DomainCommand, type DomainsState } from "./domain-decisions.ts";
import { LostRace } from "@mam/service-kit/commands.ts";
import { execute, type CommandMeta } from "./execute.ts";
import { targetWorkspace, type Caller } from "./target-workspace.ts";

/** Registers a custom domain in one workspace, with a fresh DKIM key and the records to publish. */
export async function addDomain(ctx: MailboxContext, caller: Caller, raw: unknown, meta: CommandMeta) {
  requireDomainManager(caller.claims);
  const body = parseOrThrow(CreateDomainBody, parseOrThrow(AddDomainCommand, raw).body);
  const platform = ctx.cfg.MAIL_DOMAIN;
  if (body.domain === platform || body.domain.endsWith(`.${platform}`)) {
    throw new AppError("CONFLICT", `${body.domain} belongs to the platform`);
  }
  const ws = await targetWorkspace(ctx, caller, body.workspaceId);
  const key = await newDkimKey(ctx.cfg.DKIM_SELECTOR);
  const command: DomainCommand = {
    type: "AddDomain",
    tenantId: ws.tenantId,
    workspaceId: ws.id,
    domainId: ctx.newId(),
    domain: body.domain,
    selector: key.selector,
    dkimPublicKey: key.publicKey,
    records: expectedRecords(ctx.cfg, body.domain, key),
  };
  const now = ctx.clock();
  return execute(ctx, ws.tenantId, meta, {
    load: (tx) => loadForNewDomain(tx, command),
    decide: (state) => decide(command, state),
    answer: async (tx) => {
      await assertDomainClaimed(tx, command.domain, command.domainId);
      // The private half lives in the key store only (never in an event): not a projection.
      await tx
        .insertInto("dkim_keys")
        .values({ key_ref: command.domainId, selector: key.selector, private_key_pem: key.privateKeyPem, public_key: key.publicKey, created_at: now })
        .execute();
      const row = await tx
        .selectFrom("domains")
        .selectAll()
        .where("workspace_id", "=", ws.id)
        .where("domain_id", "=", command.domainId)
        .executeTakeFirstOrThrow();
      return { status: 201, body: domainView(row, row.workspace_id) };
    },
  });
}

/** Looks the records up now (before the lock); a change of any record's status (or the domain's) is recorded as an event. */
export async function verifyDomain(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta): Promise<Domain> {
  requireDomainManager(claims);
  const given = parseOrThrow(DomainRef, raw).domain;
  const ref = domainKey(given);
  const before = await visibleDomain(ctx.db, claims, given);
  const checked = await checkRecords(makeResolver(ctx.cfg.DNS_SERVERS), before.records as never);
  const command: DomainCommand = {
    type: "CheckDomain",
    caller: claims,
    ref,
    checked: { status: checked.verified ? "verified" : "pending", records: checked.records },
  };
  return execute(ctx, before.tenant_id, meta, {
    load: (tx) => loadDomain(tx, ref),
    decide: (state) => decide(command, state),
    answer: async (tx) => {
      const r = await visibleDomain(tx, claims, given);
      return domainView(r, r.workspace_id);
    },
  });
}

/** Refused while an inbox address still uses the domain. */
export async function removeDomain(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  requireDomainManager(claims);
  const given = parseOrThrow(DomainRef, raw).domain;
  const ref = domainKey(given);
  const d = await visibleDomain(ctx.db, claims, given);
  const command: DomainCommand = { type: "RemoveDomain", caller: claims, ref };
  return execute(ctx, d.tenant_id, meta, {
    load: (tx) => loadForRemoval(tx, ref),
    decide: (state) => decide(command, state),
    answer: async (tx, _state, events) => {
      const removed = events[0]?.aggregateId;
      // The private key goes with the domain: the key store is not a projection, nothing else removes it.
      if (removed) await tx.deleteFrom("dkim_keys").where("key_ref", "=", removed).execute();
      return { deleted: true, id: d.domain_id };
    },
  });
}

const toState = (r: Pick<DomainRow, "domain_id" | "domain" | "status" | "records" | "version" | "tenant_id" | "workspace_id">) => ({
  id: r.domain_id,
  name: r.domain,
  status: r.status,
  records: r.records,
  version: r.version,
  tenantId: r.tenant_id,
  workspaceId: r.workspace_id,
});

const COLUMNS = ["domain_id", "domain", "status", "records", "version", "tenant_id", "workspace_id"] as const;

/** The live domains with this id or name, whoever's: the decision picks the one the caller sees. */
async function loadDomain(tx: Kysely<MailboxDb>, ref: string): Promise<DomainsState> {
  const state = initial();
  const rows = await tx
    .selectFrom("domains")
    .select(COLUMNS)
    .where("deleted_at", "is", null)
    .where(isDomainId(ref) ? "domain_id" : "domain", "=", ref)
    .execute();
  for (const r of rows) state.domains[r.domain_id] = toState(r);
  return state;
}

/** The domain, and one address on it if any (of any tenant): enough to refuse. */
async function loadForRemoval(tx: Kysely<MailboxDb>, ref: string): Promise<DomainsState> {
  const state = await loadDomain(tx, ref);
  for (const live of Object.values(state.domains)) {
    const used = await tx.selectFrom("address_claims").selectAll().where("address", "like", `%@${live.name}`).limit(1).executeTakeFirst();
    if (used) state.claims[used.address] = { tenantId: used.tenant_id, workspaceId: used.workspace_id, inboxId: used.inbox_id };
  }
  return state;
}

/**
 * The target workspace's live domains (at most MAX_DOMAINS_PER_WORKSPACE) and who holds the
 * name. Names are unique across tenants, whose locks differ: as with addresses (see
 * `assertClaimed`), the unique key of `domain_claims` decides, when the event is applied;
 * `answer` checks the claim is ours (LostRace otherwise).
 */
async function loadForNewDomain(tx: Kysely<MailboxDb>, cmd: Extract<DomainCommand, { type: "AddDomain" }>): Promise<DomainsState> {
  const state = initial();
  const rows = await tx.selectFrom("domains").select(COLUMNS).where("workspace_id", "=", cmd.workspaceId).where("deleted_at", "is", null).execute();
  for (const r of rows) state.domains[r.domain_id] = toState(r);
  const holder = await tx.selectFrom("domain_claims").select("domain_id").where("domain", "=", cmd.domain).executeTakeFirst();
  if (holder) state.domainClaims[cmd.domain] = holder.domain_id;
  return state;
}

async function assertDomainClaimed(tx: Kysely<MailboxDb>, domain: string, domainId: string): Promise<void> {
  const holder = await tx.selectFrom("domain_claims").select("domain_id").where("domain", "=", domain).executeTakeFirst();
  if (holder?.domain_id !== domainId) throw new LostRace(`${domain} was registered by another request`);
}
