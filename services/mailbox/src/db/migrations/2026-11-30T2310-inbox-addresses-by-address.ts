import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
// An address given up goes to another live inbox that has it, if one does (a rebuild may
// apply its claim before the release that preceded it): the projection asks by address
// alone, across tenants, like address_claims.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index inbox_addresses_address on inbox_addresses (address)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index inbox_addresses_address`.execute(db);
}
