import { sql, type Kysely } from "kysely";

/** Storage parameters per table (`autovacuum_vacuum_threshold`, `fillfactor`, …), by name. */
export type StorageParameters = Record<string, Record<string, number>>;

/**
 * Sets each table's storage parameters, for a migration's `up` (`resetStorageParameters`
 * for its `down`). ALTER TABLE … SET takes a lock only DDL and VACUUM wait on: reads and
 * writes go on. A new fillfactor applies to the pages written from then on. Names and values
 * go into the statement as they are: a migration's constants, never input.
 */
export async function setStorageParameters(db: Kysely<any>, tables: StorageParameters): Promise<void> {
  for (const [table, parameters] of Object.entries(tables)) {
    const list = Object.entries(parameters).map(([name, value]) => `${name} = ${value}`);
    await sql`alter table ${sql.table(table)} set (${sql.raw(list.join(", "))})`.execute(db);
  }
}

/** Puts the parameters `setStorageParameters` set back to the server's defaults. */
export async function resetStorageParameters(db: Kysely<any>, tables: StorageParameters): Promise<void> {
  for (const [table, parameters] of Object.entries(tables)) {
    await sql`alter table ${sql.table(table)} reset (${sql.raw(Object.keys(parameters).join(", "))})`.execute(db);
  }
}
