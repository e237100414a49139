import type { Kysely, Selectable } from "kysely";
import type { Domain } from "@mam/contracts/domains-api.ts";
import type { DnsRecord } from "@mam/contracts/mailbox-events.ts";
import { notFound } from "@mam/contracts/errors.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { seesWorkspace } from "@mam/scope/access.ts";
import type { DomainsTable, MailboxDb } from "../db/schema.ts";

export type DomainRow = Selectable<DomainsTable>;

const iso = (d: Date | string) => new Date(d).toISOString();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function domainView(r: Pick<DomainRow, "domain_id" | "domain" | "status" | "records" | "created_at" | "updated_at" | "verified_at">, workspaceId: string | null): Domain {
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
    verifiedAt: r.verified_at ? iso(r.verified_at) : null,
  };
}

/** A live domain the caller may see, by id or by name; anything else is the same 404. */
export async function visibleDomain(db: Kysely<MailboxDb>, claims: ScopeClaims, ref: string): Promise<DomainRow> {
  const key = decodeURIComponent(ref).trim().toLowerCase();
  let q = db.selectFrom("domains").selectAll().where("deleted_at", "is", null);
  q = UUID.test(key) ? q.where("domain_id", "=", key) : q.where("domain", "=", key);
  const rows = await q.execute();
  const r = rows.find((d) => seesWorkspace(claims, { tenantId: d.tenant_id, workspaceId: d.workspace_id }));
  if (!r || claims.inboxId) throw notFound("Domain");
  return r;
}

/** True when `domain` is verified in this workspace: then inboxes and aliases may use it. */
export async function verifiedInWorkspace(db: Kysely<MailboxDb>, workspaceId: string, domain: string): Promise<boolean> {
  const r = await db
    .selectFrom("domains")
    .select("domain_id")
    .where("workspace_id", "=", workspaceId)
    .where("domain", "=", domain)
    .where("status", "=", "verified")
    .where("deleted_at", "is", null)
    .executeTakeFirst();
  return r !== undefined;
}
