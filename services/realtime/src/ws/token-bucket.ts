/**
 * A budget of things a client may do: `burst` at once, then `refill` more every `everyMs`,
 * never more than `burst` saved up. It starts full and refills continuously on the wall clock
 * (`Date.now()`), in fractions of a token: a client that waits half the time has half a token
 * more, not none. A refused try takes nothing, but the refill up to it still counts.
 */
export class TokenBucket {
  private tokens: number;
  private refilledAt = Date.now();

  constructor(private readonly o: { burst: number; refill: number; everyMs: number }) {
    this.tokens = o.burst;
  }

  /** Takes one token if a whole one is there; false (and nothing taken) if not. */
  take(): boolean {
    const now = Date.now();
    // Divided then multiplied, in this order: `refill` 1 adds exactly elapsed / everyMs.
    this.tokens = Math.min(this.o.burst, this.tokens + ((now - this.refilledAt) / this.o.everyMs) * this.o.refill);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
