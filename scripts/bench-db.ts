/**
 * pnpm bench:db — what a write costs sent named (prepared, DB_PREPARED_STATEMENTS, see
 * packages/db/src/prepared.ts) beside sent unnamed, through the services' own database
 * layer (openDatabase and Kysely): pairs of a 30-column insert, as a message is stored, and an
 * update by key, on one connection each way, in alternating rounds. Prints per pair the CPU
 * of the PostgreSQL server process serving the connection (read from /proc: the server must
 * run on this machine, else it prints n/a), of this process, and the wall time.
 * Env: BENCH_DB_PAIRS (3000 per round), BENCH_DB_ROUNDS (3). Prints figures; asserts nothing.
 */
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { type Kysely, sql } from "kysely";
import { openDatabase, type Database } from "@mam/db/database.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { isolate } from "@mam/testing/isolation.ts";

const PAIRS = Number(process.env.BENCH_DB_PAIRS ?? 3000);
const ROUNDS = Number(process.env.BENCH_DB_ROUNDS ?? 3);
const COLUMNS = Array.from({ length: 28 }, (_, i) => `c${i}`);

/** CPU milliseconds a server process has used, or undefined when it is not on this machine. */
function serverCpuMs(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    // utime and stime, in clock ticks (100 a second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

async function round(db: Kysely<any>, pid: number, workspace: string) {
  const server0 = serverCpuMs(pid);
  const own0 = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < PAIRS; i++) {
    const id = randomUUID();
    await db
      .insertInto("stored")
      .values({ id, workspace_id: workspace, ...Object.fromEntries(COLUMNS.map((c) => [c, `${c}-${i}`])) })
      .onConflict((oc) => oc.column("id").doNothing())
      .execute();
    await db
      .updateTable("stored")
      .set({ c0: `read-${i}` })
      .where("workspace_id", "=", workspace)
      .where("id", "=", id)
      .execute();
  }
  const wall = (performance.now() - started) / PAIRS;
  const own = process.cpuUsage(own0);
  const server1 = serverCpuMs(pid);
  return {
    server: server0 === undefined || server1 === undefined ? undefined : (server1 - server0) / PAIRS,
    own: (own.user + own.system) / 1000 / PAIRS,
    wall,
  };
}

async function main() {
  const iso = isolate();
  const logger = createLogger("bench-db", "warn");
  const opened: Database<any>[] = [];
  try {
    const open = async (preparedStatements: number) => {
      const d = await openDatabase<any>({ url: iso.urls.DATABASE_URL, schema: iso.schema("benchdb"), logger, poolSize: 1, preparedStatements, migrations: {} });
      opened.push(d);
      const pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(d.db)).rows[0]!.pid;
      return { db: d.db, pid };
    };
    const named = await open(200);
    await sql
      .raw(`create table if not exists stored (id uuid primary key, workspace_id uuid not null, ${COLUMNS.map((c) => `${c} text`).join(", ")})`)
      .execute(named.db);
    const unnamed = await open(0);
    const workspace = randomUUID();
    process.stdout.write(`statement pairs (a 30-column insert and an update by key), ${PAIRS} a round, ms per pair\n`);
    process.stdout.write("  round  sent                server CPU   this process CPU   wall\n");
    const fmt = (v: number | undefined) => (v === undefined ? "n/a" : v.toFixed(3)).padStart(10);
    for (let r = 1; r <= ROUNDS; r++) {
      for (const [label, c] of [
        ["unnamed", unnamed],
        ["named (prepared)", named],
      ] as const) {
        const f = await round(c.db, c.pid, workspace);
        process.stdout.write(`  ${String(r).padStart(5)}  ${label.padEnd(18)} ${fmt(f.server)}   ${fmt(f.own).padStart(16)}   ${fmt(f.wall)}\n`);
      }
    }
  } finally {
    for (const d of opened) await d.close();
    await iso.cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
