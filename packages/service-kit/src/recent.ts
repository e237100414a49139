/**
 * Ids of events this process applied inline and committed, so its own consumer can ack
 * them without a query. Bounded: the oldest ids are forgotten first, and a forgotten (or
 * never seen, after a restart) id only costs the consumer its usual dedupe check.
 * Only ever add ids after their transaction committed.
 */
export class RecentlyApplied {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity = 100_000) {}

  add(ids: Iterable<string>): void {
    for (const id of ids) {
      this.ids.add(id);
      if (this.ids.size > this.capacity) {
        // A Set iterates in insertion order: the first one is the oldest.
        for (const oldest of this.ids) {
          this.ids.delete(oldest);
          break;
        }
      }
    }
  }

  /** Whether the id was applied (and is still remembered); forgets it, since each is consumed once. */
  take(id: string | undefined): boolean {
    return !!id && this.ids.delete(id);
  }

  get size(): number {
    return this.ids.size;
  }
}
