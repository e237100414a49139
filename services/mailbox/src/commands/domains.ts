import type { Kysely } from "kysely";
import { AppError, parseOrThrow } from "@mam/contracts/errors.ts";
import { AddDomainCommand, CreateDomainBody, DomainRef, type Domain } from "@mam/contracts/domains-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import { checkRecords, makeResolver } from "../dns/verify.ts";
import { expectedRecords, newDkimKey } from "../dns/records.ts";
import { claimCutoff, domainKey, domainView, requireDomainManager, visibleDomain } from "../read/domains.ts";
import { isClosed } from "./inbox-load.ts";
import { claimClock, forgetKeysOfRemoved, loadNamed, releaseOtherClaims, STATE_COLUMNS, toState } from "./domain-claims.ts";
import { decide, type DomainCommand, type DomainsState } from "./domain-decisions.ts";
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
    ...claimClock(ctx),
  };
  const now = ctx.clock();
  return execute(ctx, ws.tenantId, meta, {
    load: (tx) => loadForNewDomain(tx, command),
    decide: (state) => decide(command, state),
    answer: async (tx, _state, events) => {
      await forgetKeysOfRemoved(tx, events);
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

/**
 * Looks the records up now (before the lock); a change of any record's status (or the
 * domain's) is recorded as an event. The first claim of a name to verify owns it; the other
 * tenants' claims of the name are then released, each under its own tenant's lock.
 */
export async function verifyDomain(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta): Promise<Domain> {
  requireDomainManager(claims);
  const given = parseOrThrow(DomainRef, raw).domain;
  const ref = domainKey(given);
  const before = await visibleDomain(ctx.db, claims, given, claimCutoff(ctx));
  const checked = await checkRecords(makeResolver(ctx.cfg.DNS_SERVERS), before.records as never);
  const command: DomainCommand = {
    type: "CheckDomain",
    caller: claims,
    ref,
    checked: { status: checked.verified ? "verified" : "pending", records: checked.records },
    ...claimClock(ctx),
  };
  const view = await execute(ctx, before.tenant_id, meta, {
    load: (tx) => loadNamed(tx, before.domain),
    decide: (state) => decide(command, state),
    answer: async (tx, _state, events) => {
      if (events.some((d) => d.event.type === "DomainChecked" && d.event.data.status === "verified")) {
        await assertOwner(tx, before.domain, before.domain_id);
      }
      const r = await visibleDomain(tx, claims, given, claimCutoff(ctx));
      return domainView(r, r.workspace_id);
    },
  });
  // Also when it was verified before: a release an earlier verification could not finish is done now.
  if (view.status === "verified") await releaseOtherClaims(ctx, before.domain, before.tenant_id, meta);
  return view;
}

/** Refused while an inbox address still uses the domain. */
export async function removeDomain(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  requireDomainManager(claims);
  const given = parseOrThrow(DomainRef, raw).domain;
  const ref = domainKey(given);
  const d = await visibleDomain(ctx.db, claims, given, claimCutoff(ctx));
  const command: DomainCommand = { type: "RemoveDomain", caller: claims, ref, ...claimClock(ctx) };
  return execute(ctx, d.tenant_id, meta, {
    load: (tx) => loadForRemoval(tx, d.domain),
    decide: (state) => decide(command, state),
    answer: async (tx, _state, events) => {
      await forgetKeysOfRemoved(tx, events);
      return { deleted: true, id: d.domain_id };
    },
  });
}

/** The claims of the name, and one address on it if any (of any tenant): enough to refuse. */
async function loadForRemoval(tx: Kysely<MailboxDb>, domain: string): Promise<DomainsState> {
  const state = await loadNamed(tx, domain);
  const used = await tx.selectFrom("address_claims").selectAll().where("address", "like", `%@${domain}`).limit(1).executeTakeFirst();
  if (used) state.claims[used.address] = { tenantId: used.tenant_id, workspaceId: used.workspace_id, inboxId: used.inbox_id };
  return state;
}

/**
 * The target workspace's domains (at most MAX_DOMAINS_PER_WORKSPACE live ones), and every
 * claim of the name with its owner: the tenant's own claim (in any workspace) holds the name
 * for it, another tenant's only once verified.
 */
async function loadForNewDomain(tx: Kysely<MailboxDb>, cmd: Extract<DomainCommand, { type: "AddDomain" }>): Promise<DomainsState> {
  const state = await loadNamed(tx, cmd.domain);
  if (await isClosed(tx, cmd.workspaceId)) state.closed = { [cmd.workspaceId]: true };
  const rows = await tx.selectFrom("domains").select(STATE_COLUMNS).where("workspace_id", "=", cmd.workspaceId).where("deleted_at", "is", null).execute();
  for (const r of rows) state.domains[r.domain_id] = toState(r);
  // The lapse of the workspace's other claims needs their names' owners.
  const names = [...new Set(rows.map((r) => r.domain))];
  if (names.length) {
    const owners = await tx.selectFrom("domain_claims").select(["domain", "domain_id"]).where("domain", "in", names).execute();
    for (const o of owners) state.domainClaims[o.domain] = o.domain_id;
  }
  return state;
}

/**
 * Behind the name lock two verifications cannot both find the name free; should they
 * anyway, the unique key of `domain_claims` kept the first, and this one is decided again.
 */
async function assertOwner(tx: Kysely<MailboxDb>, domain: string, domainId: string): Promise<void> {
  const owner = await tx.selectFrom("domain_claims").select("domain_id").where("domain", "=", domain).executeTakeFirst();
  if (owner?.domain_id !== domainId) throw new LostRace(`${domain} was verified by another request`);
}
