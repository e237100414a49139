/**
 * The message bytes all connections may hold in memory at once. Each message takes its
 * share through a reservation, as its data arrives, and gives it back once the message is
 * recorded or refused: however many clients send at once, the sum stays under the cap.
 */
export class BufferBudget {
  private used = 0;

  constructor(readonly cap: number) {}

  get inUse(): number {
    return this.used;
  }

  reservation(): Reservation {
    return new Reservation(this);
  }

  /** @internal through a Reservation only */
  take(n: number): boolean {
    if (this.used + n > this.cap) return false;
    this.used += n;
    return true;
  }

  /** @internal through a Reservation only */
  give(n: number): void {
    this.used -= n;
  }
}

/** One message's share of the budget; `release` is safe to call more than once. */
export class Reservation {
  private held = 0;

  constructor(private readonly budget: BufferBudget) {}

  get bytes(): number {
    return this.held;
  }

  /** Takes `n` more bytes, or nothing and false when the budget cannot spare them. */
  grow(n: number): boolean {
    if (!this.budget.take(n)) return false;
    this.held += n;
    return true;
  }

  release(): void {
    this.budget.give(this.held);
    this.held = 0;
  }
}
