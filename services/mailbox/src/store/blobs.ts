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
