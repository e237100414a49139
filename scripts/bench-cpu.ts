import { existsSync, readdirSync, readFileSync } from "node:fs";

/**
 * CPU seconds used so far by each process that takes part, read from /proc (Linux): the
 * services named, nats-server, every postgres backend, and this process (under `self`).
 * Empty where /proc is not there.
 */
export function cpuSeconds(services: Record<string, number>, self: string): Map<string, number> {
  const out = new Map<string, number>();
  if (!existsSync("/proc/self/stat")) return out;
  const ticks = (pid: string) => {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    // utime + stime, and cutime + cstime: the CPU of its children that ended (a Postgres backend
    // or autovacuum worker that exits mid-measurement moves its time to the postmaster's, so
    // the sum over the processes never goes back). In clock ticks of 10 ms.
    return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
  };
  const add = (name: string, s: number) => out.set(name, (out.get(name) ?? 0) + s);
  for (const [name, pid] of Object.entries(services)) add(name, ticks(String(pid)));
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
      if (comm === "nats-server") add("nats-server", ticks(pid));
      else if (comm === "postgres" || comm.startsWith("postgres:")) add("postgres", ticks(pid));
    } catch {
      // Gone in between.
    }
  }
  const own = process.cpuUsage();
  add(self, (own.user + own.system) / 1e6);
  return out;
}

/** Statements each service has sent its Postgres so far, from its metrics (mam_db_query_duration_seconds' count). */
export async function statementsOf(healthPorts: Map<string, number>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const [name, port] of healthPorts) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    let n = 0;
    for (const m of text.matchAll(/^mam_db_query_duration_seconds_count\{[^}]*\} (\d+)$/gm)) n += Number(m[1]);
    out.set(name, n);
  }
  return out;
}

/** The services' DB_PREPARED_STATEMENTS when the bench was given one (0 measures without named statements). */
export const preparedSetting = (): Record<string, string> =>
  process.env.DB_PREPARED_STATEMENTS === undefined ? {} : { DB_PREPARED_STATEMENTS: process.env.DB_PREPARED_STATEMENTS };
