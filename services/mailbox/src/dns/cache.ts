import type { Resolver } from "node:dns/promises";

export type Lookup = (name: string, rrtype: string) => Promise<unknown>;

/** Answers that say "there is no such record" and are worth remembering for a while. */
const NEGATIVE = new Set(["ENOTFOUND", "ENODATA", "NXDOMAIN"]);

/**
 * A small answer cache in front of the resolvers for the lookups of inbound mail
 * authentication (SPF, DKIM, DMARC): a burst of mail from one sender asks the same few
 * questions over and over. Node's resolver does not return TTLs for TXT answers, so
 * answers are kept a short fixed time (records change rarely, and a change is seen within
 * `ttlMs`); "no such record" for less; server failures and timeouts are never kept.
 * Concurrent questions for the same name share one lookup.
 */
export function cachedLookup(resolver: Resolver, o: { ttlMs?: number; negativeTtlMs?: number; max?: number; now?: () => number } = {}): Lookup {
  const ttl = o.ttlMs ?? 60_000;
  const negativeTtl = o.negativeTtlMs ?? 30_000;
  const max = o.max ?? 10_000;
  const now = o.now ?? Date.now;
  const entries = new Map<string, { expires: number; answer: Promise<unknown> }>();

  const remember = (key: string, answer: Promise<unknown>, forMs: number) => {
    entries.delete(key);
    entries.set(key, { expires: now() + forMs, answer });
    if (entries.size > max) entries.delete(entries.keys().next().value!);
  };

  return (name, rrtype) => {
    const key = `${rrtype.toUpperCase()} ${name.toLowerCase()}`;
    const hit = entries.get(key);
    if (hit && hit.expires > now()) return hit.answer;
    const answer = resolver.resolve(name, rrtype as "TXT");
    // In flight: shared until it settles, then kept (or dropped) by what it said.
    remember(key, answer, ttl);
    answer.then(
      () => remember(key, answer, ttl),
      (err: NodeJS.ErrnoException) => {
        if (NEGATIVE.has(err.code ?? "")) remember(key, answer, negativeTtl);
        else entries.delete(key);
      },
    );
    return answer;
  };
}
