import type { ExpressionBuilder, Kysely, Selectable } from "kysely";
import { DomainRef, type Domain } from "@mam/contracts/domains-api.ts";
import type { DnsRecord } from "@mam/contracts/mailbox-events.ts";
import { AppError, notFound, parseOrThrow } from "@mam/contracts/errors.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { seesWorkspace } from "@mam/scope/access.ts";
import { NO_WORKSPACE } from "@mam/service-kit/event-sourcing.ts";
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

/**
 * The caller's live domains. Lapsed claims are left out; reading them is also when their
 * end is recorded (DomainRemoved with its reason), so history agrees with what was shown.
 */
export async function listDomains(ctx: MailboxContext, claims: ScopeClaims): Promise<{ domains: Domain[] }> {
  requireDomainManager(claims);
  const cutoff = claimCutoff(ctx);
  let q = ctx.db.selectFrom("domains").selectAll().where("tenant_id", "=", claims.tenantId!).where("deleted_at", "is", null);
  if (claims.workspaces !== "*") q = q.where("workspace_id", "in", claims.workspaces.length ? claims.workspaces : [NO_WORKSPACE]);
  const lapsed = await q
    .clearSelect()
    .select("domain")
    .distinct()
    .where((eb) => eb.not(liveDomain(cutoff)(eb)))
    .execute();
  for (const { domain } of lapsed) await releaseLapsedClaims(ctx, claims.tenantId!, domain, ctx.newId());
  const rows = await q.where(liveDomain(cutoff)).orderBy("created_at").orderBy("domain_id").execute();
  return { domains: rows.map((r) => domainView(r, r.workspace_id)) };
}

export async function getDomain(ctx: MailboxContext, claims: ScopeClaims, raw: unknown): Promise<Domain> {
  requireDomainManager(claims);
  const r = await visibleDomain(ctx.db, claims, parseOrThrow(DomainRef, raw).domain, claimCutoff(ctx));
  return domainView(r, r.workspace_id);
}
