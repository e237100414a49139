import { sql, type Generated, type Kysely } from "kysely";
import { eventSubject, type EventEnvelope } from "@mam/contracts/envelope.ts";

/** The outbox of a service's schema (see migrations/2026-11-30T0000-outbox.ts). */
export interface OutboxTables {
  outbox: {
    seq: Generated<number>;
    tenant_key: string;
    event_id: string;
    subject: string;
    envelope: string;
    created_at: Generated<Date>;
    published_at: Date | null;
    stream_seq: number | null;
  };
}

export interface OutboxRow {
  seq: number;
  tenant_key: string;
  event_id: string;
  subject: string;
  envelope: string;
}

/** An event as the outbox keeps it: its subject (without the deployment's prefix) and its encoded envelope. */
export interface EncodedEvent {
  event_id: string;
  subject: string;
  envelope: string;
}

/** Whose order an event keeps: its tenant's, or the operator's for events of no tenant. */
export const tenantKeyOf = (tenantId: string | null | undefined): string => tenantId ?? "_";

/**
 * Writes a command's events into the outbox, in the command's transaction: they become
 * visible to the relay only if the command commits, and all of them together.
 */
export async function recordInOutbox(tx: Kysely<any>, envelopes: EventEnvelope[]): Promise<EncodedEvent[]> {
  if (!envelopes.length) return [];
  const rows = envelopes.map((e) => ({ tenant_key: tenantKeyOf(e.tenantId), event_id: e.id, subject: eventSubject("", e), envelope: JSON.stringify(e) }));
  await (tx as Kysely<OutboxTables>).insertInto("outbox").values(rows).execute();
  return rows;
}

/**
 * A relay pass's start (the kit's relay_claim): bounds on its transaction and the tenant's
 * relay lock, then, once the lock is held, the tenant's oldest unpublished rows in commit
 * order, without their envelopes. "busy" when another pass holds the lock.
 */
export async function claimPending(tx: Kysely<any>, lockName: string, tenantKey: string, limit: number): Promise<"busy" | Omit<OutboxRow, "envelope">[]> {
  const r = await sql<{ got: boolean; seq: number | null; event_id: string | null; subject: string | null }>`
    select got, seq, event_id, subject from relay_claim(hashtextextended(${lockName}, 0), ${tenantKey}, ${limit})`.execute(tx);
  if (r.rows[0]?.got === false) return "busy";
  return r.rows.map((row) => ({ seq: row.seq!, tenant_key: tenantKey, event_id: row.event_id!, subject: row.subject! }));
}

/** The envelopes of these rows, by seq. */
export async function envelopesOfRows(tx: Kysely<any>, seqs: number[]): Promise<Map<number, string>> {
  if (!seqs.length) return new Map();
  const rows = await (tx as Kysely<OutboxTables>).selectFrom("outbox").select(["seq", "envelope"]).where("seq", "in", seqs).execute();
  return new Map(rows.map((r) => [r.seq, r.envelope]));
}

/**
 * Marks rows published, with the sequence the stream gave each (one statement). The
 * envelope is dropped: the stream holds it now, and the row left behind is small.
 */
export async function markPublished(tx: Kysely<any>, published: { seq: number; streamSeq: number }[]): Promise<void> {
  if (!published.length) return;
  await sql`
    update outbox set published_at = now(), stream_seq = v.stream_seq, envelope = ''
    from (select unnest(${published.map((p) => p.seq)}::bigint[]) as seq, unnest(${published.map((p) => p.streamSeq)}::bigint[]) as stream_seq) v
    where outbox.seq = v.seq`.execute(tx);
}

/** Tenants with events waiting, those waiting longest first, for the relay's sweep. */
export async function tenantsWithPending(db: Kysely<any>, limit: number): Promise<string[]> {
  const rows = await sql<{ tenant_key: string }>`
    select tenant_key from outbox where published_at is null group by tenant_key order by min(seq) limit ${limit}`.execute(db);
  return rows.rows.map((r) => r.tenant_key);
}

/** Drops rows published longer ago than the retention, a bounded number at a time. */
export async function prunePublished(db: Kysely<any>, olderThanMs: number, limit = 5_000): Promise<number> {
  const r = await sql`
    delete from outbox where seq in (
      select seq from outbox where published_at < now() - make_interval(secs => ${olderThanMs / 1000}) limit ${limit}
    )`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}
