import type { Kysely } from "kysely";
import type { RealtimeDb } from "../db/schema.ts";

/**
 * Records a domain verified by the check `eventId`; true when that check is the one that
 * made it so (the transition), also on a redelivery of it. A later check of a domain still
 * verified (its DMARC record appeared, say) finds another event's row and is no transition.
 */
export async function markVerified(
  db: Kysely<RealtimeDb>,
  d: { workspaceId: string; domainId: string; domain: string; eventId: string; at: Date },
): Promise<boolean> {
  const row = await db
    .insertInto("feed_verified_domains")
    .values({ workspace_id: d.workspaceId, domain_id: d.domainId, domain: d.domain, event_id: d.eventId, verified_at: d.at })
    // A no-op update, so the existing row comes back and tells whose transition it was.
    .onConflict((oc) => oc.columns(["workspace_id", "domain_id"]).doUpdateSet((eb) => ({ event_id: eb.ref("feed_verified_domains.event_id") })))
    .returning("event_id")
    .executeTakeFirstOrThrow();
  return row.event_id === d.eventId;
}

/** The domain is no longer verified (a failed check, or removed): its next verification fires again. */
export async function forgetVerified(db: Kysely<RealtimeDb>, workspaceId: string, domainId: string): Promise<void> {
  await db.deleteFrom("feed_verified_domains").where("workspace_id", "=", workspaceId).where("domain_id", "=", domainId).execute();
}
