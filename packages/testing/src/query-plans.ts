import type { CompiledQuery, Kysely } from "kysely";
import { sql } from "kysely";
import pg from "pg";
import { namedWhenSent } from "@mam/db/prepared.ts";

/** One node of Postgres's `EXPLAIN (FORMAT JSON)` tree. */
export interface PlanNode {
  "Node Type": string;
  "Index Name"?: string;
  "Relation Name"?: string;
  Plans?: PlanNode[];
  [k: string]: unknown;
}

/** The plan Postgres chooses for a compiled query, run with its own parameters. */
export async function planOf(db: Kysely<any>, q: CompiledQuery): Promise<PlanNode> {
  const { rows } = await db.executeQuery<{ "QUERY PLAN": { Plan: PlanNode }[] }>({
    ...q,
    sql: `explain (format json) ${q.sql}`,
  } as CompiledQuery<{ "QUERY PLAN": { Plan: PlanNode }[] }>);
  return rows[0]!["QUERY PLAN"][0]!.Plan;
}

/**
 * The plan a prepared statement of the query runs with once PostgreSQL has run it enough times
 * to choose, under the server's own `plan_cache_mode`, between planning each run for its
 * values and keeping a generic plan: services send their statements prepared
 * (packages/db/src/prepared.ts), so a list must be served in order by this plan too.
 */
export async function preparedPlanOf(db: Kysely<any>, q: CompiledQuery): Promise<PlanNode> {
  return db.connection().execute(async (conn) => {
    // EXECUTE takes no bound parameters: the values go in as literals, cast to the parameters' types.
    const args = q.parameters.length ? `(${q.parameters.map(literalOf).join(", ")})` : "";
    await sql.raw(`prepare plan_probe as ${q.sql}`).execute(conn);
    try {
      // The choice is made after five runs planned for their values (PostgreSQL's plancache.c).
      for (let i = 0; i < 6; i++) await sql.raw(`execute plan_probe${args}`).execute(conn);
      const { rows } = await sql<{ "QUERY PLAN": { Plan: PlanNode }[] }>`${sql.raw(`explain (format json) execute plan_probe${args}`)}`.execute(conn);
      return rows[0]!["QUERY PLAN"][0]!.Plan;
    } finally {
      await sql`deallocate plan_probe`.execute(conn);
    }
  });
}

/**
 * The plans a query runs with: planned for its values and, when services send its text as a
 * named statement (most but pages, see packages/db/src/prepared.ts), the plan that statement
 * keeps; each with how it was got.
 */
export async function plansOf(db: Kysely<any>, q: CompiledQuery): Promise<[string, PlanNode][]> {
  const plans: [string, PlanNode][] = [["planned for its values", await planOf(db, q)]];
  if (namedWhenSent(q.sql, q.parameters.length)) plans.push(["as a prepared statement", await preparedPlanOf(db, q)]);
  return plans;
}

/** A parameter's value as an SQL literal of unknown type (PostgreSQL casts it to the parameter's). */
function literalOf(v: unknown): string {
  if (v === null || v === undefined) return "NULL";
  const text = (x: unknown): string => (x instanceof Date ? x.toISOString() : typeof x === "object" ? JSON.stringify(x) : String(x));
  const body = Array.isArray(v) ? `{${v.map((x) => (x === null ? "NULL" : `"${text(x).replace(/[\\"]/g, "\\$&")}"`)).join(",")}}` : text(v);
  return pg.escapeLiteral(body);
}

export function nodesOf(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodesOf)];
}

/**
 * Why a plan does not serve a list from an index in order, or null when it does: it must
 * read `table` through an index (never a sequential scan of it), and sort nothing (the
 * index gives the order; a Sort node means every matching row is read first).
 */
export function orderedIndexProblem(plan: PlanNode, table: string): string | null {
  const nodes = nodesOf(plan);
  const sorts = nodes.filter((n) => n["Node Type"] === "Sort" || n["Node Type"] === "Incremental Sort");
  if (sorts.length) return `sorts (${sorts.map((n) => n["Node Type"]).join(", ")})`;
  const onTable = nodes.filter((n) => n["Relation Name"] === table);
  if (!onTable.length) return `does not read ${table}`;
  const seq = onTable.find((n) => n["Node Type"] === "Seq Scan");
  if (seq) return `scans ${table} sequentially`;
  if (!onTable.some((n) => typeof n["Index Name"] === "string")) return `reads ${table} without an index`;
  return null;
}

/** Refreshes the planner's statistics, so a test's freshly seeded rows count. */
export async function analyze(db: Kysely<any>, tables: string[]): Promise<void> {
  for (const t of tables) await sql`analyze ${sql.table(t)}`.execute(db);
}
