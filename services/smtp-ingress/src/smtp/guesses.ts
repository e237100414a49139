import { addressBucket } from "@mam/runtime/client-address.ts";

interface Window {
  /** When the current window began (ms). */
  start: number;
  /** Unknown recipients named in the window before it, and in it. */
  prev: number;
  cur: number;
}

/**
 * Unknown recipients named from each client address (an IPv4 address or an IPv6 /64, see
 * addressBucket) across its connections, over a sliding window: the current fixed window's
 * count plus the previous one's, weighted by how much of it still lies within the last
 * `windowMs`. SMTP_MAX_UNKNOWN_RECIPIENTS caps one connection; this caps an address that
 * reconnects to go on guessing. Once it is over the limit, everything it asks is answered
 * alike (421, try later), known addresses too: answering those would still tell which exist.
 *
 * Counted per process: N replicas behind one address allow N times the limit. At most
 * `maxTracked` addresses are remembered; the one unheard from longest is forgotten first.
 */
export class UnknownRecipientRate {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxTracked = 100_000,
  ) {}

  /** Counts an unknown recipient named from `remote`; true when that puts it over the limit. */
  note(remote: string): boolean {
    if (this.limit === 0) return false;
    const key = addressBucket(remote);
    const t = this.now();
    const w = this.rolled(this.windows.get(key), t);
    w.cur++;
    // Re-inserted: the Map's order is then the order addresses were last heard from.
    this.windows.delete(key);
    this.windows.set(key, w);
    this.forget(t);
    return this.estimate(w, t) > this.limit;
  }

  /** Whether `remote` has named more unknown recipients than the limit over the last window (never with no limit, 0). */
  over(remote: string): boolean {
    if (this.limit === 0) return false;
    const w = this.windows.get(addressBucket(remote));
    if (!w) return false;
    const t = this.now();
    return this.estimate(this.rolled(w, t), t) > this.limit;
  }

  /** Addresses remembered now. */
  get tracked(): number {
    return this.windows.size;
  }

  /** The window moved on to `t` (in place, or a fresh one). */
  private rolled(w: Window | undefined, t: number): Window {
    if (!w || t - w.start >= 2 * this.windowMs) return { start: t, prev: 0, cur: 0 };
    if (t - w.start >= this.windowMs) {
      w.prev = w.cur;
      w.cur = 0;
      w.start += this.windowMs;
    }
    return w;
  }

  private estimate(w: Window, t: number): number {
    const past = Math.min(1, Math.max(0, (t - w.start) / this.windowMs));
    return w.prev * (1 - past) + w.cur;
  }

  /** Drops addresses silent for two windows (they count nothing), and the oldest past maxTracked. */
  private forget(t: number): void {
    for (const [key, w] of this.windows) {
      if (this.windows.size <= this.maxTracked && t - w.start < 2 * this.windowMs) return;
      this.windows.delete(key);
    }
  }
}
