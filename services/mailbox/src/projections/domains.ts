import { sql, type Kysely } from "kysely";
import type { MailboxEnvelope } from "@mam/contracts/mailbox-events.ts";
import type { MailboxDb } from "../db/schema.ts";

type DomainEvent = Extract<MailboxEnvelope, { type: `Domain${string}` }>;

/**
 * Custom domains of a workspace, with the DNS records to publish and their status, and
 * `domain_claims`: which claim of a name owns it (several tenants may claim a name; only a
 * DNS proof makes one the owner).
 */
export async function evolveDomains(tx: Kysely<MailboxDb>, e: DomainEvent): Promise<void> {
  const ws = e.workspaceId!;
  switch (e.type) {
    case "DomainAdded":
      await tx
        .insertInto("domains")
        .values({
          workspace_id: ws,
          domain_id: e.data.domainId,
          tenant_id: e.tenantId!,
          domain: e.data.domain,
          selector: e.data.selector,
          dkim_public_key: e.data.dkimPublicKey,
          status: "pending",
          records: JSON.stringify(e.data.records),
          version: e.aggregateVersion,
          created_at: e.occurredAt,
          updated_at: e.occurredAt,
          verified_at: null,
          deleted_at: null,
        })
        .onConflict((oc) => oc.columns(["workspace_id", "domain_id"]).doNothing())
        .execute();
      return;
    case "DomainChecked": {
      const row = await tx
        .selectFrom("domains")
        .select(["domain", "verified_at"])
        .where("workspace_id", "=", ws)
        .where("domain_id", "=", e.data.domainId)
        .executeTakeFirst();
      await tx
        .updateTable("domains")
        .set({
          status: e.data.status,
          records: JSON.stringify(e.data.records),
          version: e.aggregateVersion,
          updated_at: e.occurredAt,
          // Sticky: once proven, a claim stays proven (its owner keeps the name when a later
          // check fails, and a rebuild must know it was proven, whatever the status now).
          verified_at: e.data.status === "verified" ? (row?.verified_at ?? e.occurredAt) : (row?.verified_at ?? null),
        })
        .where("workspace_id", "=", ws)
        .where("domain_id", "=", e.data.domainId)
        .execute();
      // The first claim of a name to verify owns it (the unique key decides between tenants,
      // whose commands hold different locks); it stays the owner until removed.
      if (row && e.data.status === "verified") {
        await tx
          .insertInto("domain_claims")
          .values({ domain: row.domain, workspace_id: ws, domain_id: e.data.domainId })
          .onConflict((oc) => oc.doNothing())
          .execute();
      }
      return;
    }
    case "DomainRemoved":
      await tx
        .updateTable("domains")
        .set({ deleted_at: e.occurredAt, updated_at: e.occurredAt, version: e.aggregateVersion })
        .where("workspace_id", "=", ws)
        .where("domain_id", "=", e.data.domainId)
        .execute();
      await tx.deleteFrom("domain_claims").where("domain", "=", e.data.domain).where("domain_id", "=", e.data.domainId).execute();
      await promoteOwner(tx, e.data.domain);
      return;
    default: {
      const unreachable: never = e;
      throw new Error(`unhandled domain event ${(unreachable as DomainEvent).type}`);
    }
  }
}

/**
 * A name whose owner went is owned by its earliest live claim that was ever proven (a later
 * failed check does not undo a proof: in commit order the owner keeps the name), if any. In commit
 * order there is none (no claim verifies while another owns the name), but tenants reach the
 * stream in parallel: on a rebuild, B's verification may come before the removal of A's
 * claim that preceded it, find A still the owner and insert nothing. Without this the name
 * would be left unowned, B's verified domain hidden, and the sweep would release it.
 */
async function promoteOwner(tx: Kysely<MailboxDb>, domain: string): Promise<void> {
  await sql`
    insert into domain_claims (domain, workspace_id, domain_id)
    select domain, workspace_id, domain_id from domains
    where domain = ${domain} and verified_at is not null and deleted_at is null
    order by verified_at, domain_id
    limit 1
    on conflict do nothing`.execute(tx);
}
