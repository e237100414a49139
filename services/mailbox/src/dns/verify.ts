import { Resolver } from "node:dns/promises";
import type { DnsRecord } from "@mam/contracts/mailbox-events.ts";
import { REQUIRED } from "./records.ts";

const clean = (h: string) => h.toLowerCase().replace(/\.$/, "");

/** A resolver on the configured servers (`host[:port]`, comma separated), or the system's. */
export function makeResolver(servers: string | undefined): Resolver {
  const r = new Resolver({ timeout: 2_000, tries: 2 });
  if (servers)
    r.setServers(
      servers
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    );
  return r;
}

async function txt(resolver: Resolver, name: string): Promise<string[]> {
  try {
    return (await resolver.resolveTxt(name)).map((chunks) => chunks.join(""));
  } catch {
    // NXDOMAIN, no data, or a server failure: not verified now; the caller may verify again.
    return [];
  }
}

function tags(record: string): Map<string, string> {
  return new Map(
    record
      .split(";")
      .map((t) => t.trim())
      .filter(Boolean)
      .map((t) => {
        const i = t.indexOf("=");
        return [t.slice(0, i).trim().toLowerCase(), t.slice(i + 1).replace(/\s+/g, "")] as [string, string];
      }),
  );
}

async function holds(resolver: Resolver, r: DnsRecord): Promise<boolean> {
  switch (r.purpose) {
    case "mx": {
      const mx = await resolver.resolveMx(r.name).catch(() => []);
      return mx.some((m) => clean(m.exchange) === clean(r.value));
    }
    case "spf": {
      const include = r.value.split(/\s+/).find((t) => t.startsWith("include:"))!;
      return (await txt(resolver, r.name)).some((t) => t.toLowerCase().startsWith("v=spf1") && t.toLowerCase().split(/\s+/).includes(include.toLowerCase()));
    }
    case "dkim": {
      const want = tags(r.value).get("p");
      return (await txt(resolver, r.name)).some((t) => tags(t).get("v") !== "DKIM0" && tags(t).get("p") === want);
    }
    case "dmarc":
      return (await txt(resolver, r.name)).some((t) => /^v=DMARC1(;|\s|$)/i.test(t.trim()));
    default: {
      const unreachable: never = r.purpose;
      throw new Error(`unknown record purpose ${String(unreachable)}`);
    }
  }
}

/** Looks every record up and says which hold, and whether the domain is verified. */
export async function checkRecords(resolver: Resolver, records: DnsRecord[]): Promise<{ records: DnsRecord[]; verified: boolean }> {
  const checked = await Promise.all(records.map(async (r) => ({ ...r, status: (await holds(resolver, r)) ? ("verified" as const) : ("pending" as const) })));
  const verified = REQUIRED.every((p) => checked.some((r) => r.purpose === p && r.status === "verified"));
  return { records: checked, verified };
}
