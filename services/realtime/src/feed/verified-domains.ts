import { sql, type Kysely } from "kysely";
import type { RealtimeDb } from "../db/schema.ts";

export interface DomainFact {
  workspaceId: string;
  domainId: string;
  /** Its name ("" when the event does not tell: kept from before). */
  domain: string;
  /** The domain event, and its aggregate version (each domain event raises it by one). */
  eventId: string;
  version: number;
  /** Whether the event leaves the domain verified (a DomainChecked verified) or not (any other check, DomainRemoved). */
  verified: boolean;
  at: Date;
}

/**
 * Records what a domain event says of its domain, in version order; true when it is the
 * event that made the domain verified (the transition), also on a redelivery of it, even
 * one after newer events of the domain (feed_domain_transitions remembers which fired). A later
 * check of a domain still verified (its DMARC record appeared, say) keeps the first one's id
 * and is no transition. An event older than the one recorded (delivered late: a retry, a
 * second replica) changes nothing and announces nothing, so a late "pending" cannot make a
 * verified domain look unverified (whose next check would then fire again), nor a late
 * "verified" make a pending one look verified (whose next verification would then be missed).
 */
export function applyDomainFact(db: Kysely<RealtimeDb>, d: DomainFact): Promise<boolean> {
  // One transaction: the row and the record of its transition, or neither.
  return db.transaction().execute((tx) => applyIn(tx, d));
}

async function applyIn(db: Kysely<RealtimeDb>, d: DomainFact): Promise<boolean> {
  const row = await db
    .insertInto("feed_verified_domains")
    .values({
      workspace_id: d.workspaceId,
      domain_id: d.domainId,
      domain: d.domain,
      event_id: d.eventId,
      verified_at: d.at,
      version: d.version,
      verified: d.verified,
    })
    .onConflict((oc) =>
      oc
        .columns(["workspace_id", "domain_id"])
        .doUpdateSet({
          version: sql`excluded.version`,
          verified: sql`excluded.verified`,
          domain: sql`case when excluded.domain <> '' then excluded.domain else feed_verified_domains.domain end`,
          // The check that made it verified stays its id while it stays verified; any other event's otherwise.
          event_id: sql`case when excluded.verified and feed_verified_domains.verified then feed_verified_domains.event_id else excluded.event_id end`,
          verified_at: sql`case when excluded.verified and feed_verified_domains.verified then feed_verified_domains.verified_at else excluded.verified_at end`,
        })
        // The same version again is a redelivery of the event recorded: it says the same.
        .where(sql<boolean>`feed_verified_domains.version <= excluded.version`),
    )
    .returning(["event_id", "verified"])
    .executeTakeFirst();
  if (!d.verified) return false;
  if (row?.verified && row.event_id === d.eventId) {
    await db
      .insertInto("feed_domain_transitions")
      .values({ event_id: d.eventId, workspace_id: d.workspaceId, domain_id: d.domainId })
      .onConflict((oc) => oc.column("event_id").doNothing())
      .execute();
    return true;
  }
  // Rendered again after newer events of the domain were applied (its batch tried again after
  // a publish failed): announced again if it made the transition when first applied.
  return !!(await db.selectFrom("feed_domain_transitions").select("event_id").where("event_id", "=", d.eventId).executeTakeFirst());
}
