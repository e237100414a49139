/**
 * A budget of things a client may do: `burst` at once, then `refill` more every `everyMs`,
 * never more than `burst` saved up. It starts full and refills continuously, in fractions of a
 * token: a client that waits half the time has half a token more, not none. A refused try
 * takes nothing, but the refill up to it still counts. The clock is monotonic
 * (`performance.now()`): a wall clock set back would empty the bucket for as long, and one set
 * forward fill it.
 */
export class TokenBucket {
  private tokens: number;
  private refilledAt: number;
  private readonly now: () => number;

  constructor(private readonly o: { burst: number; refill: number; everyMs: number; now?: () => number }) {
    this.now = o.now ?? (() => performance.now());
    this.tokens = o.burst;
    this.refilledAt = this.now();
  }

  /** Takes one token if a whole one is there; false (and nothing taken) if not. */
  take(): boolean {
    const now = this.now();
    // Divided then multiplied, in this order: `refill` 1 adds exactly elapsed / everyMs.
    const elapsed = Math.max(0, now - this.refilledAt);
    this.tokens = Math.min(this.o.burst, this.tokens + (elapsed / this.o.everyMs) * this.o.refill);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Gives back a token taken for something that then did not happen (never past `burst`). */
  giveBack(): void {
    this.tokens = Math.min(this.o.burst, this.tokens + 1);
  }
}
