import { createHash } from "node:crypto";
import { sql, type Kysely } from "kysely";
import type { MailboxDb } from "../db/schema.ts";

export const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

/** Stores bytes once per workspace under their SHA-256; storing the same bytes again is free. */
export async function putBlob(db: Kysely<MailboxDb>, workspaceId: string, data: Buffer, now: Date): Promise<string> {
  const hash = sha256(data);
  await db
    .insertInto("blobs")
    .values({ workspace_id: workspaceId, hash, size: data.length, data, created_at: now })
    .onConflict((oc) => oc.columns(["workspace_id", "hash"]).doNothing())
    .execute();
  return hash;
}

/** Stores many blobs with one statement (each once per workspace). */
export async function putBlobs(db: Kysely<MailboxDb>, blobs: { workspaceId: string; data: Buffer }[], now: Date): Promise<void> {
  if (!blobs.length) return;
  await db
    .insertInto("blobs")
    .values(blobs.map(({ workspaceId, data }) => ({ workspace_id: workspaceId, hash: sha256(data), size: data.length, data, created_at: now })))
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
