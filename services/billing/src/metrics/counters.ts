import { sql, type Kysely } from "kysely";
import type { BillingDb } from "../db/schema.ts";

/** What is counted over a window, and what is held now (the latest row's total). */
export type CountKind = "sent" | "received" | "bounced";
export type ResourceKind = "inboxes" | "domains";
export type Kind = CountKind | ResourceKind;

type Db = Kysely<BillingDb>;

/**
 * Adds `delta` to the cumulative counter of (scope, kind) at time `at`. Rows only grow in
 * time: an event older than the scope's latest row (late, or redelivered out of order) is
 * booked at that latest row's time, never before it, so every row's total stays the total of
 * everything up to it and `cum(to) − cum(from)` is a count. Such a late event may land a little
 * after its own time in a window; it is never lost nor counted twice. Called in the event's
 * transaction, under a lock of the (scope, kind) pair.
 */
export async function bump(tx: Db, scopeId: string, kind: Kind, at: Date, delta: number): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`${scopeId}:${kind}`}, 0))`.execute(tx);
  const last = await tx
    .selectFrom("metric_counters")
    .select(["at", "cum"])
    .where("scope_id", "=", scopeId)
    .where("kind", "=", kind)
    .orderBy("at", "desc")
    .limit(1)
    .executeTakeFirst();
  if (last && at.getTime() <= last.at.getTime()) {
    await tx
      .updateTable("metric_counters")
      .set({ cum: sql`cum + ${delta}` })
      .where("scope_id", "=", scopeId)
      .where("kind", "=", kind)
      .where("at", "=", last.at)
      .execute();
    return;
  }
  await tx
    .insertInto("metric_counters")
    .values({ scope_id: scopeId, kind, at, cum: Number(last?.cum ?? 0) + delta })
    .execute();
}

/** The total of (scope, kind) over everything strictly before `before` (or ever, without it): one index lookup. */
export async function cumBefore(db: Db, scopeId: string, kind: Kind, before?: Date): Promise<number> {
  let q = db.selectFrom("metric_counters").select("cum").where("scope_id", "=", scopeId).where("kind", "=", kind);
  if (before) q = q.where("at", "<", before);
  const row = await q.orderBy("at", "desc").limit(1).executeTakeFirst();
  return Number(row?.cum ?? 0);
}

/**
 * The sum over a tenant's workspaces of their totals of `kind` strictly before `before` (or
 * ever): one query, one index lookup per workspace (a lateral join), so a tenant with many
 * workspaces costs one round trip and one pooled connection, not one per workspace.
 */
export async function tenantCumBefore(db: Db, tenantId: string, kind: Kind, before?: Date): Promise<number> {
  const row = await db
    .selectFrom("metric_workspaces as w")
    .innerJoinLateral(
      (eb) => {
        let q = eb.selectFrom("metric_counters as c").select("c.cum").whereRef("c.scope_id", "=", "w.workspace_id").where("c.kind", "=", kind);
        if (before) q = q.where("c.at", "<", before);
        return q.orderBy("c.at", "desc").limit(1).as("last");
      },
      (join) => join.onTrue(),
    )
    .select((eb) => eb.fn.sum<string | null>("last.cum").as("n"))
    .where("w.tenant_id", "=", tenantId)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}
