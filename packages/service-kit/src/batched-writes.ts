import type { Kysely } from "kysely";

/** Writes rows of one kind with as few statements as it likes (one, mostly). */
export type RowsWriter<DB, R> = (tx: Kysely<DB>, rows: R[]) => Promise<void>;

/**
 * Rows that the commands of one transaction write beside their events (a send's idempotency
 * record), gathered while the commands answer and written once they all have, one writer call
 * per kind of row instead of one statement per command. A group-committed batch of sends thus
 * records its idempotency keys with one statement. Written in the same transaction, before
 * the commit: a failure fails the transaction, as the command's own statement would have.
 * Only for rows nothing in the transaction reads back before the commit.
 */
export class BatchedWrites<DB> {
  private readonly rows = new Map<RowsWriter<DB, any>, unknown[]>();

  /** `writer` must be the same function for every row of a kind (a module's own): rows are grouped by it. */
  add<R>(writer: RowsWriter<DB, R>, row: R): void {
    const rows = this.rows.get(writer);
    if (rows) rows.push(row);
    else this.rows.set(writer, [row]);
  }

  async flush(tx: Kysely<DB>): Promise<void> {
    for (const [writer, rows] of this.rows) await writer(tx, rows);
    this.rows.clear();
  }
}
