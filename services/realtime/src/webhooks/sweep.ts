import { sql } from "kysely";
import type { Part } from "@mam/service-kit/service.ts";
import type { RealtimeContext } from "../context.ts";

const SWEEP_EVERY_MS = 60 * 60_000;
/** Rows removed per statement: a large backlog is pruned in short transactions. */
const BATCH = 5_000;

/** A finished delivery is kept this long past the feed's retention: until no copy of its entry can come again. */
const REDELIVERY_MARGIN_MS = 3_600_000;

/**
 * Prunes the delivery log older than WEBHOOK_LOG_RETENTION_DAYS, and finished deliveries
 * once the feed no longer holds their entry (a redelivery of it is all their row is kept
 * for). Every replica sweeps; a row removed twice is removed once. Resolves with how many went.
 */
export async function pruneWebhookLog(ctx: RealtimeContext, now: Date = ctx.clock()): Promise<number> {
  const logCutoff = new Date(now.getTime() - ctx.cfg.WEBHOOK_LOG_RETENTION_DAYS * 86_400_000);
  const doneCutoff = new Date(now.getTime() - ctx.cfg.FEED_RETENTION_S * 1000 - REDELIVERY_MARGIN_MS);
  let removed = 0;
  for (const statement of [
    () => sql`delete from webhook_attempts where ctid in (select ctid from webhook_attempts where attempted_at < ${logCutoff} limit ${BATCH})`,
    () =>
      sql`delete from webhook_deliveries where ctid in (select ctid from webhook_deliveries where state <> 'pending' and completed_at < ${doneCutoff} limit ${BATCH})`,
  ]) {
    for (;;) {
      const r = await statement().execute(ctx.db);
      const n = Number(r.numAffectedRows ?? 0);
      removed += n;
      if (n < BATCH) break;
    }
  }
  return removed;
}

export function logSweeper(ctx: RealtimeContext): Part {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const sweep = () => {
    running = pruneWebhookLog(ctx).then(
      (n) => void (n && ctx.logger.info({ removed: n }, "webhook delivery log pruned")),
      (err: unknown) => ctx.logger.warn({ err }, "webhook delivery log could not be pruned; trying again later"),
    );
  };
  return {
    start: () => {
      timer = setInterval(sweep, SWEEP_EVERY_MS);
      sweep();
    },
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
