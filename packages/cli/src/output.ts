import type { Globals } from "./context.ts";

export type Column<T> = [header: string, value: (row: T) => unknown];

const cell = (v: unknown) => (v === null || v === undefined ? "-" : typeof v === "object" ? JSON.stringify(v) : String(v));

/** Rows as aligned columns under a header; "(none)" for none. */
export function table<T>(rows: T[], columns: Column<T>[]): string {
  if (!rows.length) return "(none)";
  const cells = [columns.map(([h]) => h), ...rows.map((r) => columns.map(([, f]) => cell(f(r))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((c) => c[i]!.length)));
  return cells.map((c) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!))).join("  ")).join("\n");
}

/** Fields as `name  value` lines. */
export function fields(pairs: [string, unknown][]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${cell(v)}`).join("\n");
}

/** `--json`: the data as JSON; otherwise the human rendering. */
export function emit(g: Globals, data: unknown, human: () => string): void {
  process.stdout.write(`${g.json ? JSON.stringify(data, null, 2) : human()}\n`);
}
