import { sql, type Kysely } from "kysely";
import type { RealtimeDb } from "../db/schema.ts";
import type { NextStep } from "./backoff.ts";
import type { AttemptResult } from "./sender.ts";

/** A webhook's last delivery time is written at most this often (a busy one's attempts do not queue on its health row). */
const HEALTH_EVERY_MS = 1_000;

export interface Outcome {
  webhookId: string;
  eventId: string;
  eventType: string;
  lease: string;
  attemptId: string;
  attempt: number;
  firstAttemptAt: Date;
  /** When the attempt was made. */
  at: Date;
  /** When it ended. */
  now: Date;
  result: AttemptResult;
  /** After a failure: the next attempt, or giving up. */
  next?: NextStep;
}

/**
 * Writes an attempt's outcome in one statement (one round trip, atomic): the queue row (under
 * the lease, so only its holder writes), its log row, and the webhook's health when it
 * changes. Resolves false when the lease was no longer held (the webhook deleted meanwhile,
 * or the row taken over): nothing is written then.
 */
export async function recordOutcome(db: Kysely<RealtimeDb>, o: Outcome): Promise<boolean> {
  const { result, next } = o;
  const retryAt = next?.kind === "retry" ? next.at : null;
  const row =
    next?.kind === "retry"
      ? sql`next_attempt_at = ${next.at}, retry_delay_ms = ${next.delayMs}`
      : sql`state = ${result.success ? "delivered" : "failed"}, body = null, completed_at = ${o.now}`;
  const health = result.success
    ? sql`update webhook_health h set failing_since = null, last_delivery_at = ${o.now} from d
          where h.workspace_id = d.workspace_id and h.webhook_id = d.webhook_id
            and (h.failing_since is not null or h.last_delivery_at is null or h.last_delivery_at < ${new Date(o.now.getTime() - HEALTH_EVERY_MS)})
          returning 1`
    : next?.kind === "give-up"
      ? sql`insert into webhook_health (workspace_id, webhook_id, failing_since, last_delivery_at)
            select workspace_id, webhook_id, ${o.now}, null from d
            on conflict (workspace_id, webhook_id) do update set failing_since = coalesce(webhook_health.failing_since, excluded.failing_since)
            returning 1`
      : sql`select 1`;
  const r = await sql<{ recorded: boolean }>`
    with d as (
      update webhook_deliveries
      set attempts = ${o.attempt}, first_attempt_at = ${o.firstAttemptAt}, locked_until = null, lease = null, ${row}
      where webhook_id = ${o.webhookId} and event_id = ${o.eventId} and lease = ${o.lease}
      returning workspace_id, webhook_id
    ), logged as (
      insert into webhook_attempts
        (workspace_id, webhook_id, attempt_id, event_id, event_type, attempt, attempted_at, status_code, latency_ms, success, error, next_attempt_at)
      select workspace_id, webhook_id, ${o.attemptId}::uuid, ${o.eventId}, ${o.eventType}, ${o.attempt}::int, ${o.at}::timestamptz,
        ${result.statusCode}::int, ${result.latencyMs}::int, ${result.success}::boolean, ${result.error}::text, ${retryAt}::timestamptz
      from d
      returning 1
    ), health as (${health})
    select exists (select 1 from d) as recorded`.execute(db);
  return r.rows[0]?.recorded ?? false;
}
