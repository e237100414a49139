import { authenticate } from "mailauth";
import type { Authentication } from "@mam/contracts/message-events.ts";
import type { Lookup } from "../dns/cache.ts";
import { Verdict } from "@mam/contracts/message-events.ts";

const BUDGET_MS = 4_000;
const verdict = (v: unknown) => {
  const r = Verdict.safeParse(typeof v === "string" ? v.toLowerCase() : v);
  return r.success ? r.data : "none";
};

/**
 * SPF, DKIM and DMARC for a message received over SMTP, through the configured resolvers.
 * A lookup that cannot finish in time is a temperror (retry later), never a fail.
 */
export async function authVerdicts(raw: Buffer, o: { ip: string; helo: string; sender: string | null; mta: string; lookup: Lookup }): Promise<Authentication> {
  try {
    const res = await Promise.race([
      authenticate(raw, {
        ip: o.ip,
        helo: o.helo,
        sender: o.sender ?? undefined,
        mta: o.mta,
        disableArc: true,
        disableBimi: true,
        resolver: o.lookup as never,
      }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error("timeout")), BUDGET_MS).unref()),
    ]);
    const dkim = res.dkim.results.map((r: { status: { result: string } }) => verdict(r.status.result));
    return {
      spf: res.spf ? verdict((res.spf as { status: { result: string } }).status.result) : "none",
      dkim: dkim.includes("pass") ? "pass" : (dkim[0] ?? "none"),
      dmarc: res.dmarc ? verdict((res.dmarc as { status: { result: string } }).status.result) : "none",
    };
  } catch {
    return { spf: "temperror", dkim: "temperror", dmarc: "temperror" };
  }
}
