import type { Redis } from "ioredis";
import type { Logger } from "@mam/runtime/logger.ts";

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  retryAfterS: number;
}

/**
 * A fixed window per key in Redis, shared by every gateway instance. If Redis is down we
 * let requests through (fail open) and say so in the log: an outage of the limiter must
 * not become an outage of the API.
 */
export class RateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly max: number,
    private readonly windowS: number,
    private readonly logger: Logger,
    private readonly prefix: string,
  ) {}

  async check(keyId: string): Promise<RateDecision> {
    const windowMs = this.windowS * 1000;
    const slot = Math.floor(Date.now() / windowMs);
    const k = `${this.prefix}rl:${keyId}:${slot}`;
    try {
      const res = await this.redis.multi().set(k, 0, "PX", windowMs, "NX").incr(k).pttl(k).exec();
      const count = Number(res?.[1]?.[1] ?? 0);
      const pttl = Number(res?.[2]?.[1] ?? windowMs);
      return {
        allowed: count <= this.max,
        limit: this.max,
        remaining: Math.max(0, this.max - count),
        retryAfterS: Math.max(1, Math.ceil(pttl / 1000)),
      };
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, "rate limiter unavailable; allowing request");
      return { allowed: true, limit: this.max, remaining: this.max, retryAfterS: 0 };
    }
  }
}
