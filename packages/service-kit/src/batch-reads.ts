/**
 * What the commands of one group-committed batch load, read with one statement for the whole
 * batch instead of one per command: each statement under the tenant's lock holds up the
 * tenant's next batch. A command's key is known here from before it joins a batch until it
 * is answered (`during`); the first command of a batch to load (`of`) reads, in the batch's
 * transaction, what every key waiting then needs (the others of its batch among them), so
 * each command is still decided against what was committed before its batch.
 */
export class BatchReads<K, V> {
  private readonly waiting = new Map<string, Map<string, K>>();
  /** Per batch transaction: what was read, by key id. */
  private readonly reads = new WeakMap<object, Promise<Map<string, V>>>();

  constructor(
    private readonly o: {
      idOf: (key: K) => string;
      /** Reads in the transaction what these keys need; a key with nothing to read still gets its (empty) value. */
      read: (tx: any, keys: K[]) => Promise<Map<string, V>>;
    },
  ) {}

  /** Runs a command with its key known to the reads of the batch it joins. */
  async during<T>(tenantKey: string, key: K, run: () => Promise<T>): Promise<T> {
    let keys = this.waiting.get(tenantKey);
    if (!keys) this.waiting.set(tenantKey, (keys = new Map()));
    const id = this.o.idOf(key);
    keys.set(id, key);
    try {
      return await run();
    } finally {
      if (keys.get(id) === key) keys.delete(id);
      if (!keys.size && this.waiting.get(tenantKey) === keys) this.waiting.delete(tenantKey);
    }
  }

  /** What this key needs, as committed before the transaction `tx`. */
  async of(tx: object, tenantKey: string, key: K): Promise<V> {
    const id = this.o.idOf(key);
    let read = this.reads.get(tx);
    if (!read) {
      const keys = new Map(this.waiting.get(tenantKey));
      keys.set(id, key);
      read = this.o.read(tx, [...keys.values()]);
      this.reads.set(tx, read);
    }
    const known = (await read).get(id);
    if (known !== undefined) return known;
    // Not waiting when the batch's reads were made (so not of that batch): read on its own.
    return (await this.o.read(tx, [key])).get(id)!;
  }
}
