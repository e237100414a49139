import { withoutLogContext } from "@mam/runtime/log-context.ts";
/**
 * Per-tenant group commit, the queueing half: items of a tenant that arrive while a batch
 * of that tenant is being committed wait and go together in the next one. A failed batch
 * is tried again one item at a time when the failure may be one item's (so one cannot sink
 * the others), and failed as a whole when it is everyone's (as its caller tells).
 */
export class TenantBatches<T> {
  private readonly queues = new Map<string, T[]>();
  private readonly busy = new Set<string>();

  constructor(
    private readonly o: {
      /** How many items from the head of the queue the next batch takes (at least one). */
      take: (queue: T[]) => number;
      /** Commits a batch and settles its items; throws when none of it was committed. */
      commit: (tenantId: string, batch: T[]) => Promise<void>;
      /** Whether a failed batch may be tried again item by item. */
      retryAlone: (err: unknown) => boolean;
      fail: (item: T, err: unknown) => void;
    },
  ) {}

  add(tenantId: string, item: T): void {
    const q = this.queues.get(tenantId) ?? [];
    q.push(item);
    this.queues.set(tenantId, q);
    // The drain commits for many requests or messages: its lines name none of them (not only
    // the one whose arrival started it).
    if (!this.busy.has(tenantId)) void withoutLogContext(() => this.drain(tenantId));
  }

  private async drain(tenantId: string): Promise<void> {
    this.busy.add(tenantId);
    try {
      for (;;) {
        const q = this.queues.get(tenantId) ?? [];
        if (!q.length) break;
        const batch = q.splice(0, Math.max(1, this.o.take(q)));
        try {
          await this.o.commit(tenantId, batch);
        } catch (err) {
          if (batch.length === 1 || !this.o.retryAlone(err)) for (const item of batch) this.o.fail(item, err);
          else for (const item of batch) await this.o.commit(tenantId, [item]).catch((e: unknown) => this.o.fail(item, e));
        }
      }
    } finally {
      this.busy.delete(tenantId);
      this.queues.delete(tenantId);
    }
  }
}
