/**
 * Runs tasks in order per key and in parallel across keys, with at most `limit` in
 * flight overall: one slow workspace does not stall the others, and a burst cannot
 * make concurrency unbounded.
 */
export class KeyedRunner {
  private readonly tails = new Map<string, Promise<void>>();
  private inFlight = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  /** Resolves once the task is scheduled (not finished); waits while the runner is full. */
  async schedule(key: string, task: () => Promise<void>): Promise<void> {
    while (this.inFlight >= this.limit) await new Promise<void>((r) => this.waiters.push(r));
    this.inFlight++;
    const prev = this.tails.get(key) ?? Promise.resolve();
    // Tasks handle their own failures; a rejection must not break the chain of its key.
    const tail: Promise<void> = prev
      .then(task)
      .catch(() => undefined)
      .finally(() => {
        this.inFlight--;
        if (this.tails.get(key) === tail) this.tails.delete(key);
        this.waiters.shift()?.();
      });
    this.tails.set(key, tail);
  }

  /** Waits for everything scheduled so far. */
  async idle(): Promise<void> {
    while (this.tails.size) await Promise.all([...this.tails.values()]);
  }
}
