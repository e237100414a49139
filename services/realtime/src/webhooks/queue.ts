import { sql, type Kysely } from "kysely";
import type { RealtimeDb } from "../db/schema.ts";

/** Where and how to send: read when the attempt starts, so a changed URL or a paused webhook is seen. */
export interface Target {
  url: string;
  secret: string;
  isActive: boolean;
}

/** A queue row a replica holds the lease of. */
export interface Leased {
  webhook_id: string;
  event_id: string;
  workspace_id: string;
  tenant_id: string;
  event_type: string;
  body: string;
  attempts: number;
  first_attempt_at: Date | null;
  retry_delay_ms: number | null;
  /** When its lease runs out unless renewed (ms since the epoch): as far as this replica knows it holds it. */
  leased_until: number;
}

type Db = Kysely<RealtimeDb>;
type Ref = { webhook_id: string; event_id: string };
export type Due = Ref & { tenant_id: string; bytes: number };

const refs = (rows: Ref[]) => sql`unnest(${rows.map((r) => r.webhook_id)}::uuid[], ${rows.map((r) => r.event_id)}::text[]) as c(webhook_id, event_id)`;

/**
 * Leases due rows (a retry's time come, or a lease run out) to `lease`: the oldest first, none
 * of the webhooks in `skip` nor of the tenants in `skipTenants`, at most `limit`, of which
 * `choose` keeps those there is room for.
 * Rows another replica is leasing meanwhile are skipped, not waited for.
 */
export async function leaseDue(
  db: Db,
  o: { lease: string; now: Date; until: Date; limit: number; skip: string[]; skipTenants: string[]; choose: (due: Due[]) => Due[] },
): Promise<{ leased: Omit<Leased, "leased_until">[]; scanned: number }> {
  return db.transaction().execute(async (tx) => {
    const due = await sql<Due>`
      select webhook_id, event_id, tenant_id, coalesce(octet_length(body), 0) as bytes from webhook_deliveries
      where state = 'pending' and next_attempt_at <= ${o.now} and (locked_until is null or locked_until <= ${o.now})
        and not (webhook_id = any(${o.skip}::uuid[])) and not (tenant_id = any(${o.skipTenants}::uuid[]))
      order by next_attempt_at
      limit ${o.limit}
      for update skip locked`.execute(tx);
    const chosen = o.choose(due.rows);
    if (!chosen.length) return { leased: [], scanned: due.rows.length };
    const rows = await sql<Omit<Leased, "leased_until">>`
      update webhook_deliveries d set locked_until = ${o.until}, lease = ${o.lease}
      from ${refs(chosen)}
      where d.webhook_id = c.webhook_id and d.event_id = c.event_id
      returning d.webhook_id, d.event_id, d.workspace_id, d.tenant_id, d.event_type, d.body, d.attempts, d.first_attempt_at, d.retry_delay_ms`.execute(tx);
    return { leased: rows.rows, scanned: due.rows.length };
  });
}

/** Keeps `lease` on these rows until `until`; resolves with those it still held (`webhook_id event_id`). */
export async function renewLeases(db: Db, lease: string, rows: Ref[], until: Date): Promise<Set<string>> {
  if (!rows.length) return new Set();
  const r = await sql<Ref>`
    update webhook_deliveries d set locked_until = ${until}
    from ${refs(rows)}
    where d.webhook_id = c.webhook_id and d.event_id = c.event_id and d.lease = ${lease}
    returning d.webhook_id, d.event_id`.execute(db);
  return new Set(r.rows.map((x) => `${x.webhook_id} ${x.event_id}`));
}

/** Lets rows go: free for any replica, not before `notBefore`. */
export async function handBack(db: Db, lease: string, rows: Ref[], notBefore: Date): Promise<void> {
  if (!rows.length) return;
  await sql`
    update webhook_deliveries d set locked_until = null, lease = null, next_attempt_at = greatest(d.next_attempt_at, ${notBefore})
    from ${refs(rows)}
    where d.webhook_id = c.webhook_id and d.event_id = c.event_id and d.lease = ${lease}`.execute(db);
}

/** Ends a pending delivery without an attempt (its webhook paused or deleted). */
export async function cancelDelivery(db: Db, lease: string, row: Ref, now: Date): Promise<void> {
  await db
    .updateTable("webhook_deliveries")
    .set({ state: "canceled", body: null, completed_at: now, locked_until: null, lease: null })
    .where("webhook_id", "=", row.webhook_id)
    .where("event_id", "=", row.event_id)
    .where("lease", "=", lease)
    .execute();
}

/** The webhook's URL, secret and state now; undefined once it is deleted. */
export async function targetOf(db: Db, row: { workspace_id: string; webhook_id: string }): Promise<Target | undefined> {
  const t = await db
    .selectFrom("webhooks as w")
    .innerJoin("webhook_secrets as s", (j) => j.onRef("s.workspace_id", "=", "w.workspace_id").onRef("s.webhook_id", "=", "w.webhook_id"))
    .select(["w.url", "w.is_active", "s.secret"])
    .where("w.workspace_id", "=", row.workspace_id)
    .where("w.webhook_id", "=", row.webhook_id)
    .executeTakeFirst();
  return t && { url: t.url, secret: t.secret, isActive: t.is_active };
}
