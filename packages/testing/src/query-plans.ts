import type { CompiledQuery, Kysely } from "kysely";
import { sql } from "kysely";

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
