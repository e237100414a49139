import { sql, type Kysely } from "kysely";

// Frozen. One checkpoint row per projection was a lock every tenant's commit waited on;
// one row per projection and tenant keeps tenants independent.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable("projection_checkpoint")
    .addColumn("tenant_key", "text", (c) => c.notNull().defaultTo("_"))
    .execute();
  await sql`alter table projection_checkpoint drop constraint projection_checkpoint_pkey`.execute(db);
  await sql`alter table projection_checkpoint add primary key (projection, tenant_key)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`delete from projection_checkpoint where tenant_key <> '_'`.execute(db);
  await sql`alter table projection_checkpoint drop constraint projection_checkpoint_pkey`.execute(db);
  await sql`alter table projection_checkpoint add primary key (projection)`.execute(db);
  await db.schema.alterTable("projection_checkpoint").dropColumn("tenant_key").execute();
}
