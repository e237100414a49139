import { sql, type Kysely } from "kysely";
import type { Bus } from "@mam/bus/connection.ts";
import { cached, type Sample } from "@mam/runtime/metrics.ts";

/** A durable consumer's lag, by its name: what the stream holds that it has not acknowledged. */
export const CONSUMER_LAG = {
  name: "mam_consumer_lag_messages",
  help: "Messages a durable consumer has not acknowledged yet: not yet delivered (num_pending) plus delivered and unacknowledged (num_ack_pending)",
  labels: ["consumer"] as const,
};

/** Each statement a service sends to its Postgres: how many (the count) and how long they take. */
export const DB_QUERY = {
  name: "mam_db_query_duration_seconds",
  help: "Time from sending a statement to Postgres to its result, by outcome (ok or error); a transaction's begin and commit count as statements",
  labels: ["outcome"] as const,
  // A statement takes a fraction of a millisecond to tens of them.
  buckets: [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
};

/** The names of a service's read models change only when one is added: read again once a minute. */
const PROJECTIONS_TTL_MS = 60_000;

/**
 * The lag of each named durable consumer of `stream`, from JetStream's consumer info (one
 * request each, which a locked-down server allows a service for its own consumers). A
 * consumer that does not exist now (deleted to be replayed) is left out.
 */
export function consumerLags(bus: Bus, stream: string, durables: () => Promise<string[]> | string[]): () => Promise<Sample<"consumer">[]> {
  return async () => {
    // Said at once: a request sent now would wait in the client's buffer until it reconnects.
    if (!bus.connected()) return [];
    const names = await durables();
    const infos = await Promise.all(names.map((d) => bus.jsm.consumers.info(stream, d).catch(() => undefined)));
    return infos.flatMap((info, i) => (info ? [{ labels: { consumer: names[i]! }, value: info.num_pending + info.num_ack_pending }] : []));
  };
}

/**
 * The read models a service keeps, as its store names them: every projection has rows in
 * `projection_checkpoint` (one per tenant), under its durable consumer's name. Read with a
 * loose index scan (one primary-key probe per projection, however many tenants) and cached.
 * A service without that table keeps none. A rebuild's record (`<projection>@rebuild`) shares
 * the table but names no consumer: left out.
 */
export function projectionNames(db: Kysely<any>): () => Promise<string[]> {
  return cached(async () => {
    const { rows } = await sql<{ present: boolean }>`select to_regclass('projection_checkpoint') is not null as present`.execute(db);
    if (!rows[0]?.present) return [];
    const names = await sql<{ projection: string }>`
      with recursive p(projection) as (
        (select projection from projection_checkpoint order by projection limit 1)
        union all
        select (select c.projection from projection_checkpoint c where c.projection > p.projection order by c.projection limit 1)
        from p where p.projection is not null
      )
      select projection from p where projection is not null`.execute(db);
    return names.rows.map((r) => r.projection).filter((p) => !p.includes("@"));
  }, PROJECTIONS_TTL_MS);
}

/**
 * Messages a stream holds. For a work-queue stream (INGEST) that is exactly the backlog:
 * a message leaves it once its consumer acknowledged it.
 */
export function streamMessages(bus: Bus, stream: string): () => Promise<Sample<never>[]> {
  return async () => (bus.connected() ? [{ value: (await bus.jsm.streams.info(stream)).state.messages }] : []);
}
