import { sql, type Kysely } from "kysely";

// Frozen. Every event-sourced service's outbox: envelopes written in the command's own
// transaction, published by the relay after commit, in `seq` order per tenant.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table outbox (
      seq bigserial primary key,
      tenant_key text not null,
      event_id uuid not null,
      subject text not null,
      envelope text not null,
      created_at timestamptz not null default now(),
      published_at timestamptz,
      stream_seq bigint
    )`.execute(db);
  await sql`create index outbox_pending on outbox (tenant_key, seq) where published_at is null`.execute(db);
  await sql`create index outbox_published on outbox (published_at) where published_at is not null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table outbox`.execute(db);
}
