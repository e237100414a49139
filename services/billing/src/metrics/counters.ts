import { sql, type Kysely } from "kysely";
import type { BillingDb } from "../db/schema.ts";

/** What is counted over a window, and what is held now (the latest row's total). */
export type CountKind = "sent" | "received" | "bounced";
export type ResourceKind = "inboxes" | "domains";
export type Kind = CountKind | ResourceKind;

type Db = Kysely<BillingDb>;

interface Pending {
  scopeId: string;
  kind: Kind;
  /** The changes in the order their events came, each at its event's time. */
  changes: { at: Date; delta: number }[];
}

/**
 * Changes to the cumulative counters, gathered over a batch of events and written together:
 * per (scope, kind) one lock, one read of the latest row and at most one update and one
 * insert, however many events the batch holds. The rows are those the events one at a time
 * would have left. Rows only grow in time: a change no later than the scope's latest row
 * (late, or redelivered out of order) is booked at that row's time, never before it, so
 * every row's total stays the total of everything up to it and `cum(to) − cum(from)` is a
 * count. Such a late event may land a little after its own time in a window; it is never
 * lost nor counted twice.
 */
export class CounterChanges {
  private readonly pending = new Map<string, Pending>();

  add(scopeId: string, kind: Kind, at: Date, delta: number): void {
    const key = `${scopeId}:${kind}`;
    let p = this.pending.get(key);
    if (!p) this.pending.set(key, (p = { scopeId, kind, changes: [] }));
    p.changes.push({ at, delta });
  }

  /** Writes every change, in the batch's transaction. */
  async write(tx: Db): Promise<void> {
    if (!this.pending.size) return;
    // Keys locked in one order, so two writers can never wait on each other.
    const groups = [...this.pending.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, p]) => p);
    const scopes = groups.map((g) => g.scopeId);
    const kinds = groups.map((g) => g.kind);
    await sql`select pg_advisory_xact_lock(hashtextextended(k, 0))
      from unnest(${groups.map((g) => `${g.scopeId}:${g.kind}`)}::text[]) with ordinality as l(k, n) order by n`.execute(tx);
    const latest = await sql<{ n: string; at: Date | null; cum: string | null }>`
      select l.n, c.at, c.cum
      from unnest(${scopes}::uuid[], ${kinds}::text[]) with ordinality as l(scope_id, kind, n)
      left join lateral (
        select at, cum from metric_counters m where m.scope_id = l.scope_id and m.kind = l.kind order by at desc limit 1
      ) c on true`.execute(tx);
    const last = new Map(latest.rows.map((r) => [Number(r.n) - 1, r.at ? { at: r.at, cum: Number(r.cum) } : undefined]));
    const late: { scope: string; kind: Kind; at: Date; delta: number }[] = [];
    const rows: { scope_id: string; kind: Kind; at: Date; cum: number }[] = [];
    groups.forEach((g, i) => {
      const stored = last.get(i);
      let lateDelta = 0;
      /** The newest row as the changes so far left it: the stored one, or one of this batch's new rows. */
      let newest: { at: Date; cum: number } | undefined = stored;
      for (const c of g.changes) {
        if (newest && c.at.getTime() <= newest.at.getTime()) {
          newest.cum += c.delta;
          if (newest === stored) lateDelta += c.delta;
          continue;
        }
        const row = { scope_id: g.scopeId, kind: g.kind, at: c.at, cum: (newest?.cum ?? 0) + c.delta };
        rows.push(row);
        newest = row;
      }
      if (stored && lateDelta) late.push({ scope: g.scopeId, kind: g.kind, at: stored.at, delta: lateDelta });
    });
    if (late.length) {
      await sql`update metric_counters m set cum = m.cum + v.delta
        from unnest(${late.map((l) => l.scope)}::uuid[], ${late.map((l) => l.kind)}::text[], ${late.map((l) => l.at)}::timestamptz[], ${late.map((l) => l.delta)}::bigint[])
          as v(scope_id, kind, at, delta)
        where m.scope_id = v.scope_id and m.kind = v.kind and m.at = v.at`.execute(tx);
    }
    // A new row's total already includes the later changes booked at its time (updated in place above).
    if (rows.length) await tx.insertInto("metric_counters").values(rows).execute();
    this.pending.clear();
  }
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
