import type { Kysely } from "kysely";
import { resetStorageParameters, setStorageParameters, type StorageParameters } from "@mam/service-kit/storage-parameters.ts";

// Frozen: never edit a migration that has shipped; add a new one.
// Autovacuum for the checkpoints, rows rewritten in place by every event applied. By default a
// table is vacuumed once 50 rows plus a fifth of it are dead, a bound that grows with the
// tenants; here it is a count. A fillfactor leaves room on a page for HOT updates (the new
// version beside the old, no index touched: the sequence is in no index); it applies to pages
// written from now on. The counters themselves are appended to, and keep the defaults.
const TUNED: StorageParameters = {
  // One row per consumer of the mailbox's events, rewritten by every batch the metrics count.
  metric_checkpoint: { autovacuum_vacuum_scale_factor: 0, autovacuum_vacuum_threshold: 200, fillfactor: 70 },
  // One row per projection and tenant, rewritten by every event of the plans' read model.
  projection_checkpoint: { autovacuum_vacuum_scale_factor: 0, autovacuum_vacuum_threshold: 200, fillfactor: 70 },
};

export async function up(db: Kysely<any>): Promise<void> {
  await setStorageParameters(db, TUNED);
}

export async function down(db: Kysely<any>): Promise<void> {
  await resetStorageParameters(db, TUNED);
}
