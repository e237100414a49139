import type { Kysely } from "kysely";
import { resetStorageParameters, setStorageParameters, type StorageParameters } from "@mam/service-kit/storage-parameters.ts";

// Frozen: never edit a migration that has shipped; add a new one.
// Autovacuum for the tables rewritten on every event or delivery. By default a table is vacuumed
// once 50 rows plus a fifth of it are dead: on a large table, or one whose hot rows sit among
// many, that is a great many dead versions for reads to step over; here it is a count, plus a
// small share of the large one. A fillfactor leaves room on a page for HOT updates (the new
// version beside the old, no index touched), which only updates of columns no index holds can
// be; it applies to pages written from now on. The attempt log is appended to and pruned by
// age, and keeps the defaults.
const TUNED: StorageParameters = {
  // A queue that keeps finished rows as long as the feed (a day by default): each delivery leaves dead versions (leased,
  // retried, finished), vacuumed after 1,000 plus 1% of the table; analysed at 2%, as the due rows' share of it moves;
  // a lease changes no indexed column, so HOT with room on the page.
  webhook_deliveries: {
    autovacuum_vacuum_scale_factor: 0.01,
    autovacuum_vacuum_threshold: 1000,
    autovacuum_analyze_scale_factor: 0.02,
    fillfactor: 90,
  },
  // One row per webhook, its last delivery time written up to once a second (HOT: in no index).
  webhook_health: { autovacuum_vacuum_scale_factor: 0, autovacuum_vacuum_threshold: 200, fillfactor: 70 },
  // One row per consumer of the directory's events, rewritten by every event it reads.
  ws_directory_checkpoint: { autovacuum_vacuum_scale_factor: 0, autovacuum_vacuum_threshold: 200, fillfactor: 70 },
  // One row per projection and tenant, rewritten by every event of the webhooks' read model.
  projection_checkpoint: { autovacuum_vacuum_scale_factor: 0, autovacuum_vacuum_threshold: 200, fillfactor: 70 },
};

export async function up(db: Kysely<any>): Promise<void> {
  await setStorageParameters(db, TUNED);
}

export async function down(db: Kysely<any>): Promise<void> {
  await resetStorageParameters(db, TUNED);
}
