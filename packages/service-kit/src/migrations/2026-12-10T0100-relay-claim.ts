import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one.
// A relay pass's first round trip (see OutboxRelay.pass in relay.ts): bounds on its
// transaction, the tenant's relay lock tried, and, when it is got, the tenant's oldest
// unpublished rows. Read in one statement with the lock, they would be read in a snapshot
// taken before it: a pass of another replica that published, marked and committed just
// before the lock was got would be read unpublished and sent again. In a volatile function
// the read is a statement of its own, begun once the lock is held. One row with `got` false
// when another pass holds the lock; otherwise the rows, `got` true, none when nothing waits.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function relay_claim(lock_key bigint, tenant text, max_rows integer)
    returns table (got boolean, seq bigint, event_id uuid, subject text)
    language plpgsql volatile as $$
    begin
      perform set_config('idle_in_transaction_session_timeout', '30s', true), set_config('statement_timeout', '30s', true);
      if not pg_try_advisory_xact_lock(lock_key) then
        return query select false, null::bigint, null::uuid, null::text;
        return;
      end if;
      return query
        select true, o.seq, o.event_id, o.subject from outbox o
        where o.tenant_key = tenant and o.published_at is null
        order by o.seq limit max_rows;
    end
    $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function if exists relay_claim(bigint, text, integer)`.execute(db);
}
