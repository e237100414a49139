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
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 10 ms
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
