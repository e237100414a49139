/** Most keys in one statement: a bound on its size, and on the wait of the keys behind. */
const MAX_KEYS = 256;

interface Waiting<K, V> {
  key: K;
  callers: { resolve: (v: V) => void; reject: (err: unknown) => void }[];
}

/**
 * One read that many concurrent handlers each make for their own key (a delivery's message,
 * its recipients' claims), made for all of them with one statement: while a statement is
 * out, the keys asked for meanwhile wait and go together in the next, so under load one
 * round trip serves many handlers, and an idle handler waits for nobody. It is the
 * handlers' reads that are put together, outside any transaction; a command's reads under
 * its tenant's lock are BatchReads'.
 *
 * Every answer comes from a statement begun after it was asked for: a caller may count on
 * it seeing everything committed before its call (a check made after its other reads).
 */
export class CoalescedReads<K, V> {
  private waiting = new Map<string, Waiting<K, V>>();
  private reading = false;

  constructor(
    private readonly o: {
      idOf: (key: K) => string;
      /** Reads these keys with one statement; every key gets its value (a key with nothing found, its empty value). */
      read: (keys: K[]) => Promise<Map<string, V>>;
      maxKeys?: number;
    },
  ) {}

  get(key: K): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      const id = this.o.idOf(key);
      let w = this.waiting.get(id);
      if (!w) this.waiting.set(id, (w = { key, callers: [] }));
      w.callers.push({ resolve, reject });
      // Once the caller's turn is over: the keys it asks for together (each recipient's claim) go in one statement.
      if (!this.reading) {
        this.reading = true;
        queueMicrotask(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting.size) {
        const batch = [...this.waiting].slice(0, this.o.maxKeys ?? MAX_KEYS);
        for (const [id] of batch) this.waiting.delete(id);
        try {
          const values = await this.o.read(batch.map(([, w]) => w.key));
          for (const [id, w] of batch) {
            if (values.has(id)) for (const c of w.callers) c.resolve(values.get(id)!);
            else for (const c of w.callers) c.reject(new Error(`coalesced read gave no value for ${id}`));
          }
        } catch (err) {
          // The statement failed: each of its callers fails as its own read would have.
          for (const [, w] of batch) for (const c of w.callers) c.reject(err);
        }
      }
    } finally {
      this.reading = false;
    }
  }
}
