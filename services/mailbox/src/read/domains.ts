import { sql, type ExpressionBuilder, type Kysely, type Selectable } from "kysely";
import type { z } from "zod";
import { DomainRef, type Domain, type DomainList } from "@mam/contracts/domains-api.ts";
import type { DnsRecord } from "@mam/contracts/mailbox-events.ts";
import { AppError, notFound, parseOrThrow } from "@mam/contracts/errors.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { seesWorkspace } from "@mam/scope/access.ts";
import { NO_WORKSPACE } from "@mam/service-kit/event-sourcing.ts";
import { cursorKeys, keyInstant, pageOf, paginationOf, pastKeys, type PageRequest } from "@mam/service-kit/keyset.ts";
import { releaseLapsedClaims } from "../commands/domain-claims.ts";
import type { MailboxContext } from "../context.ts";
import type { DomainsTable, MailboxDb } from "../db/schema.ts";

export type DomainRow = Selectable<DomainsTable>;

const iso = (d: Date | string) => new Date(d).toISOString();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function domainView(
  r: Pick<DomainRow, "domain_id" | "domain" | "status" | "records" | "created_at" | "updated_at" | "verified_at">,
  workspaceId: string | null,
): Domain {
  const records = r.records as DnsRecord[];
  return {
    id: r.domain_id,
    domain: r.domain,
    status: r.status,
    workspaceId,
    dnsRecords: records.map((x) => ({ type: x.type, name: x.name, value: x.value, priority: x.priority, status: x.status, purpose: x.purpose })),
    records: records.map((x) => ({ type: x.type, host: x.name, value: x.value, ...(x.priority !== null ? { priority: x.priority } : {}) })),
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
    verifiedAt: r.status === "verified" && r.verified_at ? iso(r.verified_at) : null,
  };
}

/** A domain's path key (its id or its name) as the store has it. */
/** Express decoded the path segment already: decoding it again would misread `%25E0` (and throw). */
export const domainKey = (ref: string) => ref.trim().toLowerCase();
export const isDomainId = (key: string) => UUID.test(key);

const DAY_MS = 86_400_000;

/** Claims made before this instant and still unverified have lapsed (DOMAIN_CLAIM_TTL_DAYS). */
export const claimCutoff = (ctx: Pick<MailboxContext, "clock" | "cfg">) => new Date(ctx.clock().getTime() - ctx.cfg.DOMAIN_CLAIM_TTL_DAYS * DAY_MS);

/**
 * A claim that still holds, as `lapsed` in commands/domain-decisions.ts decides it: not
 * removed, and either the name's owner (the first to prove DNS control) or unverified,
 * younger than the TTL, on a name nobody owns. A lapsed claim is hidden at once; the event
 * that ends it is recorded when a command next meets it.
 */
export function liveDomain(cutoff: Date) {
  return (eb: ExpressionBuilder<MailboxDb, "domains">) => {
    const owners = () => eb.selectFrom("domain_claims").select("domain_claims.domain_id");
    return eb.and([
      eb("domains.deleted_at", "is", null),
      eb.or([
        eb.exists(owners().whereRef("domain_claims.domain_id", "=", "domains.domain_id")),
        eb.and([eb("domains.created_at", ">", cutoff), eb.not(eb.exists(owners().whereRef("domain_claims.domain", "=", "domains.domain")))]),
      ]),
    ]);
  };
}

/** A live domain the caller may see, by id or by name; anything else (a lapsed claim too) is the same 404. */
export async function visibleDomain(db: Kysely<MailboxDb>, claims: ScopeClaims, ref: string, cutoff: Date): Promise<DomainRow> {
  const key = domainKey(ref);
  let q = db.selectFrom("domains").selectAll().where(liveDomain(cutoff));
  q = isDomainId(key) ? q.where("domain_id", "=", key) : q.where("domain", "=", key);
  const rows = await q.execute();
  const r = rows.find((d) => seesWorkspace(claims, { tenantId: d.tenant_id, workspaceId: d.workspace_id }));
  if (!r || claims.inboxId) throw notFound("Domain");
  return r;
}

/** True when `domain` is verified in this workspace, by the name's owner: then inboxes and aliases may use it. */
export async function verifiedInWorkspace(db: Kysely<MailboxDb>, workspaceId: string, domain: string): Promise<boolean> {
  const r = await db
    .selectFrom("domains")
    .innerJoin("domain_claims", "domain_claims.domain_id", "domains.domain_id")
    .select("domains.domain_id")
    .where("domains.workspace_id", "=", workspaceId)
    .where("domains.domain", "=", domain)
    .where("domains.status", "=", "verified")
    .where("domains.deleted_at", "is", null)
    .executeTakeFirst();
  return r !== undefined;
}

/** Custom domains are managed (and read) with tk_ and wk_ keys only. */
export function requireDomainManager(claims: ScopeClaims) {
  if (claims.kind !== "tenant" && claims.kind !== "workspace") throw new AppError("FORBIDDEN", "Only tk_ and wk_ keys manage domains");
}

const LIST = "domains";

/** The caller's domains, live or lapsed: the scope, whatever a cursor says. */
function scoped(db: Kysely<MailboxDb>, claims: ScopeClaims) {
  let q = db.selectFrom("domains").where("tenant_id", "=", claims.tenantId!).where("deleted_at", "is", null);
  if (claims.workspaces !== "*") q = q.where("workspace_id", "in", claims.workspaces.length ? claims.workspaces : [NO_WORKSPACE]);
  return q;
}

/** One page (and one row more) of live domains in `(created_at, domain_id)` order, served by `domains_live_by_tenant_created` (one workspace's: `domains_live_by_workspace`). */
export function domainPageQuery(db: Kysely<MailboxDb>, claims: ScopeClaims, cutoff: Date, req: PageRequest) {
  const after = cursorKeys(LIST, req);
  let q = scoped(db, claims).where(liveDomain(cutoff)).selectAll().select(keyInstant("created_at").as("key_at"));
  q = after ? q.where(pastKeys("created_at", "domain_id", after)) : q.offset(req.offset);
  return q
    .orderBy("created_at")
    .orderBy("domain_id")
    .limit(req.limit + 1);
}

/**
 * The caller's live domains. Lapsed claims are left out; reading them is also when their
 * end is recorded (DomainRemoved with its reason), so history agrees with what was shown.
 */
export async function listDomains(ctx: MailboxContext, claims: ScopeClaims, req: PageRequest): Promise<z.input<typeof DomainList>> {
  requireDomainManager(claims);
  const cutoff = claimCutoff(ctx);
  const lapsed = await scoped(ctx.db, claims)
    .select("domain")
    .distinct()
    .where((eb) => eb.not(liveDomain(cutoff)(eb)))
    .execute();
  for (const { domain } of lapsed) await releaseLapsedClaims(ctx, claims.tenantId!, domain, ctx.newId());
  const [rows, total] = await Promise.all([
    domainPageQuery(ctx.db, claims, cutoff, req).execute(),
    scoped(ctx.db, claims).where(liveDomain(cutoff)).select(sql<string>`count(*)`.as("n")).executeTakeFirstOrThrow(),
  ]);
  const page = pageOf(LIST, rows, req.limit, (r) => r.domain_id);
  return { domains: page.rows.map((r) => domainView(r, r.workspace_id)), pagination: paginationOf(req, Number(total.n), page.nextCursor) };
}

export async function getDomain(ctx: MailboxContext, claims: ScopeClaims, raw: unknown): Promise<Domain> {
  requireDomainManager(claims);
  const r = await visibleDomain(ctx.db, claims, parseOrThrow(DomainRef, raw).domain, claimCutoff(ctx));
  return domainView(r, r.workspace_id);
}
