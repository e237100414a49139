import { sql, type Kysely } from "kysely";

// Frozen. Blobs are read in slices (large raw messages and attachments travel in chunks);
// a compressed value must be decompressed whole for every slice, an uncompressed one is
// read only where the slice lies. Applies to rows written from now on.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table blobs alter column data set storage external`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table blobs alter column data set storage extended`.execute(db);
}
