import type { Kysely } from "kysely";
import { resetStorageParameters, setStorageParameters, type StorageParameters } from "../storage-parameters.ts";

// Frozen: never edit a migration that has shipped; add a new one.
// Autovacuum for the outbox. It keeps a minute of events, each of which leaves dead versions
// behind (written, marked published, deleted): never vacuumed, it held 1 GB for 5,000 live rows
// after half a million filings, and every relay pass read through them. By default a table is
// vacuumed once 50 rows plus a fifth of it are dead, a bound that grows with a backlog.
const TUNED: StorageParameters = {
  // A queue: vacuumed after 1,000 dead rows whatever its size; its pending count swings, so analysed often.
  outbox: { autovacuum_vacuum_scale_factor: 0, autovacuum_vacuum_threshold: 1000, autovacuum_analyze_scale_factor: 0.05 },
};

export async function up(db: Kysely<any>): Promise<void> {
  await setStorageParameters(db, TUNED);
}

export async function down(db: Kysely<any>): Promise<void> {
  await resetStorageParameters(db, TUNED);
}
