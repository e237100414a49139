import { sql, type Kysely } from "kysely";
import { BatchReads } from "@mam/service-kit/batch-reads.ts";
import type { MailboxDb } from "../db/schema.ts";
import type { IdempotencyRecord, SendResult } from "./send-decision.ts";

/** A send's Idempotency-Key, where it is kept: per inbox. */
export interface KeyRef {
  workspaceId: string;
  inboxId: string;
  key: string;
}

const idOf = (r: KeyRef) => `${r.workspaceId} ${r.inboxId} ${r.key}`;

/** The records of these keys (null for a key without one), with one statement. */
async function readRecords(tx: Kysely<MailboxDb>, refs: KeyRef[]): Promise<Map<string, IdempotencyRecord | null>> {
  const rows = await sql<{ workspace_id: string; inbox_id: string; key: string; request_hash: string; canonical_hash: string | null; response: unknown }>`
    select i.workspace_id, i.inbox_id, i.key, i.request_hash, i.canonical_hash, i.response
    from idempotency_keys i
    join unnest(${refs.map((r) => r.workspaceId)}::uuid[], ${refs.map((r) => r.inboxId)}::uuid[], ${refs.map((r) => r.key)}::text[]) as w(workspace_id, inbox_id, key)
      on i.workspace_id = w.workspace_id and i.inbox_id = w.inbox_id and i.key = w.key`.execute(tx);
  const out = new Map<string, IdempotencyRecord | null>(refs.map((r) => [idOf(r), null]));
  for (const r of rows.rows) {
    out.set(idOf({ workspaceId: r.workspace_id, inboxId: r.inbox_id, key: r.key }), {
      requestHash: r.request_hash,
      canonicalHash: r.canonical_hash,
      response: r.response as SendResult,
    });
  }
  return out;
}

/** The idempotency records of a tenant's group-committed sends, one read per batch (see BatchReads). */
export const idempotencyReads = () => new BatchReads<KeyRef, IdempotencyRecord | null>({ idOf, read: readRecords });
