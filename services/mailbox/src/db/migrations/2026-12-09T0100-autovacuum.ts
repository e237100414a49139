import type { Kysely } from "kysely";
import { resetStorageParameters, setStorageParameters, type StorageParameters } from "@mam/service-kit/storage-parameters.ts";

// Frozen: never edit a migration that has shipped; add a new one.
// Autovacuum for the tables filing and sending rewrite on every message (never vacuumed, half a
// million filings left 1.8 million dead thread rows, and filing was five times slower). By default a
// table is vacuumed once 50 rows plus a fifth of it are dead: on a large table, or one whose few
// hot rows sit among many, that is a great many dead versions for reads to step over; here it is
// a count, plus a small share of the large ones. A fillfactor leaves room on a page for HOT
// updates (the new version beside the old, no index touched), which only updates of columns no
// index holds can be; it applies to pages written from now on.
const TUNED: StorageParameters = {
  // Counters: a few rows per inbox, each moved by every message filed, flagged or read; the counts are in no index (HOT).
  folder_counts: { autovacuum_vacuum_scale_factor: 0.01, autovacuum_vacuum_threshold: 200, fillfactor: 80 },
  // One row per thread and folder, rewritten by every message of its thread (its time is indexed: never HOT); lists plan on its statistics.
  thread_folders: { autovacuum_vacuum_scale_factor: 0.02, autovacuum_vacuum_threshold: 1000, autovacuum_analyze_scale_factor: 0.05 },
  // One row per thread, its last_message_at moved by every message of the thread: in no index, so HOT with room on the page.
  threads: { autovacuum_vacuum_scale_factor: 0.02, autovacuum_vacuum_threshold: 1000, fillfactor: 90 },
  // One row per projection and tenant, rewritten by every event applied (HOT: the sequence is in no index).
  projection_checkpoint: { autovacuum_vacuum_scale_factor: 0, autovacuum_vacuum_threshold: 200, fillfactor: 70 },
  // One row per tenant and month, incremented in every send's transaction (HOT: the count is in no index).
  tenant_monthly_sends: { autovacuum_vacuum_scale_factor: 0, autovacuum_vacuum_threshold: 200, fillfactor: 70 },
  // A queue: rows come, are leased and rescheduled, and go; vacuumed after 1,000 dead whatever its size, analysed as it swings.
  delivery_queue: { autovacuum_vacuum_scale_factor: 0, autovacuum_vacuum_threshold: 1000, autovacuum_analyze_scale_factor: 0.05 },
};

export async function up(db: Kysely<any>): Promise<void> {
  await setStorageParameters(db, TUNED);
}

export async function down(db: Kysely<any>): Promise<void> {
  await resetStorageParameters(db, TUNED);
}
