import { createHash } from "node:crypto";
import { sql, type Kysely } from "kysely";
import type { MailboxDb } from "../db/schema.ts";

export const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

/**
 * Stores bytes once per workspace under their SHA-256 (the same bytes again are free), many
 * with one statement. Its rows go in one order whoever writes: two statements inserting the
 * same bytes in opposite orders (two sends of the same attachments, a send and a filing)
 * would each hold the row the other inserts next, and Postgres would end one as a deadlock.
 */
export async function putBlobs(db: Kysely<MailboxDb>, blobs: { workspaceId: string; data: Buffer }[], now: Date): Promise<void> {
  const rows = new Map<string, { workspace_id: string; hash: string; size: number; data: Buffer; created_at: Date }>();
  for (const { workspaceId, data } of blobs) {
    const hash = sha256(data);
    rows.set(`${workspaceId} ${hash}`, { workspace_id: workspaceId, hash, size: data.length, data, created_at: now });
  }
  if (!rows.size) return;
  const ordered = [...rows.keys()].sort().map((k) => rows.get(k)!);
  await db
    .insertInto("blobs")
    .values(ordered)
    .onConflict((oc) => oc.columns(["workspace_id", "hash"]).doNothing())
    .execute();
}

/** Bytes per coalesced statement: a bound on one message to Postgres (a single larger send goes alone). */
const COALESCED_BYTES = 8 * 1024 * 1024;

interface Queued {
  blobs: { workspaceId: string; data: Buffer }[];
  bytes: number;
  now: Date;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * putBlobs for concurrent callers outside any transaction (sends storing their bytes before
 * they take their tenant's lock): while a statement is out, the bytes asked for meanwhile
 * wait and go together in the next, so a burst of sends stores its bytes with one round trip
 * per statement rather than one per send, and an idle caller waits for nobody. A failed
 * statement fails every caller in it, whichever's bytes it failed on (a lost connection
 * fails them all anyway): each send answers its error and may be sent again, its bytes
 * being content-addressed and idempotent.
 */
export class BlobWrites {
  private queue: Queued[] = [];
  private writing = false;

  constructor(private readonly db: Kysely<MailboxDb>) {}

  put(blobs: { workspaceId: string; data: Buffer }[], now: Date): Promise<void> {
    if (!blobs.length) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ blobs, bytes: blobs.reduce((n, b) => n + b.data.length, 0), now, resolve, reject });
      if (!this.writing) {
        this.writing = true;
        queueMicrotask(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length) {
        let bytes = 0;
        let n = 0;
        while (n < this.queue.length && (n === 0 || bytes + this.queue[n]!.bytes <= COALESCED_BYTES)) bytes += this.queue[n++]!.bytes;
        const batch = this.queue.splice(0, n);
        try {
          await putBlobs(
            this.db,
            batch.flatMap((q) => q.blobs),
            batch[0]!.now,
          );
          for (const q of batch) q.resolve();
        } catch (err) {
          for (const q of batch) q.reject(err);
        }
      }
    } finally {
      this.writing = false;
    }
  }
}

export async function getBlobs(db: Kysely<MailboxDb>, workspaceId: string, hashes: string[]): Promise<Map<string, Buffer>> {
  const wanted = [...new Set(hashes)];
  if (!wanted.length) return new Map();
  const rows = await db.selectFrom("blobs").select(["hash", "data"]).where("workspace_id", "=", workspaceId).where("hash", "in", wanted).execute();
  return new Map(rows.map((r) => [r.hash, r.data]));
}

/** A slice of a stored blob and the blob's whole size; undefined when there is no such blob. */
export async function getBlobSlice(
  db: Kysely<MailboxDb>,
  workspaceId: string,
  hash: string,
  offset: number,
  length: number,
): Promise<{ size: number; data: Buffer } | undefined> {
  const row = await db
    .selectFrom("blobs")
    .select(["size", sql<Buffer>`substring(data from ${offset + 1} for ${length})`.as("data")])
    .where("workspace_id", "=", workspaceId)
    .where("hash", "=", hash)
    .executeTakeFirst();
  return row && { size: Number(row.size), data: row.data };
}
