/**
 * How fast a replica starts replays: each declares a consumer on the server, and many clients
 * resume together when a replica goes away. Past the burst, starts are spaced evenly, taken in
 * turn by the tenants waiting (one start each per round), so a tenant resuming hundreds of
 * connections does not hold up another's one (those waiting queue their live events meanwhile,
 * within each one's buffer cap). A replay no longer wanted by the time its turn comes declares
 * nothing (see replayFeed).
 */
export class ReplayPacer {
  private tokens: number;
  private refilledAt: number;
  /** Starts waiting, per tenant; the Map's order is the order tenants are served in. */
  private readonly waiting = new Map<string, (() => void)[]>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    /** A monotonic clock: a wall clock stepped back would leave the tokens far below zero. */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.refilledAt = now();
  }

  async run<T>(tenantId: string, fn: () => Promise<T>): Promise<T> {
    this.refill();
    if (this.waiting.size === 0 && this.tokens >= 1) {
      this.tokens--;
      return fn();
    }
    await new Promise<void>((resolve) => {
      const queue = this.waiting.get(tenantId);
      if (queue) queue.push(resolve);
      else this.waiting.set(tenantId, [resolve]);
      this.schedule();
    });
    return fn();
  }

  /** Starts waiting now, in all. */
  get queued(): number {
    let n = 0;
    for (const q of this.waiting.values()) n += q.length;
    return n;
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, now - this.refilledAt) * this.perSecond) / 1000);
    this.refilledAt = now;
  }

  private schedule(): void {
    if (this.timer) return;
    const wait = Math.max(0, ((1 - this.tokens) * 1000) / this.perSecond);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.release();
    }, Math.ceil(wait));
  }

  /** One start per tenant in turn, as many as there are tokens for; the tenant served goes to the back. */
  private release(): void {
    this.refill();
    while (this.tokens >= 1 && this.waiting.size) {
      const [tenantId, queue] = this.waiting.entries().next().value as [string, (() => void)[]];
      this.waiting.delete(tenantId);
      const start = queue.shift()!;
      if (queue.length) this.waiting.set(tenantId, queue);
      this.tokens--;
      start();
    }
    if (this.waiting.size) this.schedule();
  }
}
