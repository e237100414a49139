import { AppError, parseOrThrow } from "@mam/contracts/errors.ts";
import { AddDomainCommand, CreateDomainBody, DomainRef, MAX_DOMAINS_PER_WORKSPACE, type Domain } from "@mam/contracts/domains-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { MailboxContext } from "../context.ts";
import { checkRecords, makeResolver } from "../dns/verify.ts";
import { expectedRecords, newDkimKey } from "../dns/records.ts";
import { domainView, visibleDomain } from "../read/domains.ts";
import { execute, type CommandMeta } from "./execute.ts";
import { targetWorkspace, type Caller } from "./target-workspace.ts";

function requireManager(claims: ScopeClaims) {
  if (claims.kind !== "tenant" && claims.kind !== "workspace") throw new AppError("FORBIDDEN", "Only tk_ and wk_ keys manage domains");
}

/** Registers a custom domain in one workspace, with a fresh DKIM key and the records to publish. */
export async function addDomain(ctx: MailboxContext, caller: Caller, raw: unknown, meta: CommandMeta) {
  requireManager(caller.claims);
  const body = parseOrThrow(CreateDomainBody, parseOrThrow(AddDomainCommand, raw).body);
  const platform = ctx.cfg.MAIL_DOMAIN;
  if (body.domain === platform || body.domain.endsWith(`.${platform}`)) {
    throw new AppError("CONFLICT", `${body.domain} belongs to the platform`);
  }
  const ws = await targetWorkspace(ctx, caller, body.workspaceId);
  const key = await newDkimKey(ctx.cfg.DKIM_SELECTOR);
  const domainId = ctx.newId();
  const records = expectedRecords(ctx.cfg, body.domain, key);
  return execute(
    ctx,
    ws.tenantId,
    meta,
    async (tx) => {
      const count = await tx.selectFrom("domains").select((eb) => eb.fn.countAll<number>().as("n")).where("workspace_id", "=", ws.id).where("deleted_at", "is", null).executeTakeFirstOrThrow();
      if (Number(count.n) >= MAX_DOMAINS_PER_WORKSPACE) throw new AppError("CONFLICT", `A workspace holds at most ${MAX_DOMAINS_PER_WORKSPACE} domains`);
      const claimed = await tx.insertInto("domain_claims").values({ domain: body.domain, workspace_id: ws.id, domain_id: domainId }).onConflict((oc) => oc.doNothing()).executeTakeFirst();
      // Whoever has it, the answer is the same: the domain is not available.
      if (!Number(claimed.numInsertedOrUpdatedRows)) throw new AppError("CONFLICT", `${body.domain} is already registered`);
      await tx
        .insertInto("dkim_keys")
        .values({ key_ref: domainId, selector: key.selector, private_key_pem: key.privateKeyPem, public_key: key.publicKey, created_at: ctx.clock() })
        .execute();
      return [
        {
          event: { type: "DomainAdded", schemaVersion: 1, data: { domainId, domain: body.domain, selector: key.selector, dkimPublicKey: key.publicKey, records } },
          tenantId: ws.tenantId,
          workspaceId: ws.id,
          aggregateId: domainId,
          aggregateVersion: 1,
        },
      ];
    },
    async (tx) => {
      const row = await tx.selectFrom("domains").selectAll().where("workspace_id", "=", ws.id).where("domain_id", "=", domainId).executeTakeFirstOrThrow();
      return { status: 201, body: domainView(row, row.workspace_id) };
    },
  );
}

export async function listDomains(ctx: MailboxContext, claims: ScopeClaims): Promise<{ domains: Domain[] }> {
  requireManager(claims);
  let q = ctx.db.selectFrom("domains").selectAll().where("tenant_id", "=", claims.tenantId!).where("deleted_at", "is", null);
  if (claims.workspaces !== "*") q = q.where("workspace_id", "in", claims.workspaces.length ? claims.workspaces : ["00000000-0000-0000-0000-000000000000"]);
  const rows = await q.orderBy("created_at").orderBy("domain_id").execute();
  return { domains: rows.map((r) => domainView(r, r.workspace_id)) };
}

export async function getDomain(ctx: MailboxContext, claims: ScopeClaims, raw: unknown): Promise<Domain> {
  requireManager(claims);
  const r = await visibleDomain(ctx.db, claims, parseOrThrow(DomainRef, raw).domain);
  return domainView(r, r.workspace_id);
}

/** Looks the records up now; a change of any record's status (or the domain's) is recorded as an event. */
export async function verifyDomain(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta): Promise<Domain> {
  requireManager(claims);
  const ref = parseOrThrow(DomainRef, raw).domain;
  const before = await visibleDomain(ctx.db, claims, ref);
  const checked = await checkRecords(makeResolver(ctx.cfg.DNS_SERVERS), before.records as never);
  const status = checked.verified ? "verified" : "pending";
  return execute(
    ctx,
    before.tenant_id,
    meta,
    async (tx) => {
      const live = await visibleDomain(tx, claims, ref);
      const unchanged = live.status === status && JSON.stringify(live.records) === JSON.stringify(checked.records);
      if (unchanged) return [];
      return [
        {
          event: { type: "DomainChecked", schemaVersion: 1, data: { domainId: live.domain_id, status, records: checked.records } },
          tenantId: live.tenant_id,
          workspaceId: live.workspace_id,
          aggregateId: live.domain_id,
          aggregateVersion: live.version + 1,
        },
      ];
    },
    async (tx) => {
      const r = await visibleDomain(tx, claims, ref);
      return domainView(r, r.workspace_id);
    },
  );
}

/** Refused while an inbox address still uses the domain. */
export async function removeDomain(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  requireManager(claims);
  const ref = parseOrThrow(DomainRef, raw).domain;
  const d = await visibleDomain(ctx.db, claims, ref);
  return execute(
    ctx,
    d.tenant_id,
    meta,
    async (tx) => {
      const live = await visibleDomain(tx, claims, ref);
      const used = await tx.selectFrom("address_claims").select("address").where("address", "like", `%@${live.domain}`).limit(1).executeTakeFirst();
      if (used) throw new AppError("CONFLICT", `${live.domain} is still used by inbox addresses; remove them first`);
      await tx.deleteFrom("dkim_keys").where("key_ref", "=", live.domain_id).execute();
      return [
        {
          event: { type: "DomainRemoved", schemaVersion: 1, data: { domainId: live.domain_id, domain: live.domain } },
          tenantId: live.tenant_id,
          workspaceId: live.workspace_id,
          aggregateId: live.domain_id,
          aggregateVersion: live.version + 1,
        },
      ];
    },
    async () => ({ deleted: true, id: d.domain_id }),
  );
}
