import type { Redis } from "ioredis";
import type { Principal } from "@mam/contracts/keys.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import { addressBucket } from "@mam/runtime/client-address.ts";

export interface RateDecision {
  allowed: boolean;
  /** Which window the figures describe: the one that refused, else the one closest to refusing. */
  scope: "key" | "tenant" | "address";
  limit: number;
  remaining: number;
  retryAfterS: number;
}

/**
 * Counts one request against every window given, all or none: if any window is full the
 * request is refused and nothing is counted, so a key hammering past its own limit does not
 * eat its tenant's budget. KEYS: the windows; ARGV: their limits, then the window in ms.
 * Answers, per window, its count after this request (or its current count for the one that
 * refused) and its remaining ms; the first element is the 1-based index of the refusing
 * window, 0 when admitted.
 */
const COUNT_ALL_OR_NONE = `
local window = tonumber(ARGV[#ARGV])
local out = {0}
for i = 1, #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count >= tonumber(ARGV[i]) then
    return {i, count, redis.call('PTTL', KEYS[i])}
  end
end
for i = 1, #KEYS do
  local count = redis.call('INCR', KEYS[i])
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[i], window)
    ttl = window
  end
  out[#out + 1] = count
  out[#out + 1] = ttl
end
return out
`;

/** Takes one back from a window, unless it has ended meanwhile (a count without a TTL would never go). */
const GIVE_BACK = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then return redis.call('DECR', KEYS[1]) end
return 0
`;

interface Window {
  scope: RateDecision["scope"];
  key: string;
  max: number;
}

/** The scripts as ioredis defines them: EVALSHA, falling back to EVAL once per connection. */
type Script<R> = (numKeys: number, ...keysThenArgs: (string | number)[]) => Promise<R>;

/**
 * Fixed windows in Redis, shared by every gateway instance. A window starts with its first
 * request and lasts RATE_LIMIT_WINDOW_S. Keys of one tenant share a hash tag, so a
 * request's windows stay on one Redis Cluster slot and one script can count them.
 *
 * If Redis is down we let requests through (fail open) and log it once per outage: an
 * outage of the limiter must not become an outage of the API.
 */
export class RateLimiter {
  private outage = false;
  private readonly countAllOrNone: Script<number[]>;
  private readonly giveBack: Script<number>;

  constructor(
    redis: Redis,
    private readonly o: { keyMax: number; tenantMax: number; unauthenticatedMax: number; windowS: number },
    private readonly logger: Logger,
    private readonly prefix: string,
  ) {
    const commands = redis as unknown as { mamCountAllOrNone?: Script<number[]>; mamGiveBack?: Script<number> };
    if (!commands.mamCountAllOrNone) redis.defineCommand("mamCountAllOrNone", { lua: COUNT_ALL_OR_NONE });
    if (!commands.mamGiveBack) redis.defineCommand("mamGiveBack", { lua: GIVE_BACK });
    this.countAllOrNone = commands.mamCountAllOrNone!.bind(redis);
    this.giveBack = commands.mamGiveBack!.bind(redis);
  }

  /** A request of a resolved key: its own window, and its tenant's (operator keys have none). */
  check(p: Pick<Principal, "keyId" | "tenantId">): Promise<RateDecision> {
    const tag = `{${p.tenantId ?? `op:${p.keyId}`}}`;
    const windows: Window[] = [{ scope: "key", key: `${this.prefix}rl:${tag}:k:${p.keyId}`, max: this.o.keyMax }];
    if (p.tenantId) windows.push({ scope: "tenant", key: `${this.prefix}rl:${tag}:t`, max: this.o.tenantMax });
    return this.count(windows);
  }

  /**
   * Takes one lookup from a client address's allowance for keys this gateway has not seen
   * resolve, or refuses when it is spent. Taken before the lookup, so that guesses sent all
   * at once cannot overshoot it; {@link giveBackLookup} returns it when the key was known.
   *
   * On a Redis outage this fails open too. The limit keeps identity from serving lookups of
   * guessed keys at an attacker's pace; for the length of an outage those lookups are as
   * cheap as any request (an indexed read of a hash) and still answer 401, while failing
   * closed would refuse every key not in this gateway's cache.
   */
  takeLookup(address: string): Promise<RateDecision> {
    return this.count([{ scope: "address", key: this.addressKey(address), max: this.o.unauthenticatedMax }]);
  }

  /** The key was known (or identity could not tell): its lookup does not count against the address. */
  async giveBackLookup(address: string): Promise<void> {
    try {
      await this.giveBack(1, this.addressKey(address));
      this.recovered();
    } catch (err) {
      this.failOpen(err, "address", this.o.unauthenticatedMax);
    }
  }

  private addressKey(address: string): string {
    return `${this.prefix}rl:{addr:${addressBucket(address)}}`;
  }

  private async count(windows: Window[]): Promise<RateDecision> {
    const args = [...windows.map((w) => w.key), ...windows.map((w) => w.max), this.o.windowS * 1000];
    try {
      const res = await this.countAllOrNone(windows.length, ...args);
      this.recovered();
      const refused = Number(res[0]);
      if (refused > 0) {
        const w = windows[refused - 1]!;
        return { allowed: false, scope: w.scope, limit: w.max, remaining: 0, retryAfterS: retryAfter(res[2]) };
      }
      // Admitted: describe the window with the least room left.
      let best: RateDecision | undefined;
      windows.forEach((w, i) => {
        const remaining = Math.max(0, w.max - Number(res[1 + 2 * i]));
        if (!best || remaining < best.remaining) {
          best = { allowed: true, scope: w.scope, limit: w.max, remaining, retryAfterS: retryAfter(res[2 + 2 * i]) };
        }
      });
      return best!;
    } catch (err) {
      return this.failOpen(err, windows[windows.length - 1]!.scope, windows[windows.length - 1]!.max);
    }
  }

  private failOpen(err: unknown, scope: RateDecision["scope"], limit: number): RateDecision {
    if (!this.outage) {
      this.outage = true;
      this.logger.warn({ err: (err as Error).message }, "rate limiter unavailable; allowing requests until Redis answers again");
    }
    return { allowed: true, scope, limit, remaining: limit, retryAfterS: 0 };
  }

  private recovered(): void {
    if (!this.outage) return;
    this.outage = false;
    this.logger.info("rate limiter available again");
  }
}

/** Whole seconds until a window's end, at least one (a window without a TTL is about to be set one). */
function retryAfter(pttl: unknown): number {
  const ms = Number(pttl);
  return Number.isFinite(ms) && ms > 0 ? Math.max(1, Math.ceil(ms / 1000)) : 1;
}
