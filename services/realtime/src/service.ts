import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import type { Clock, IdGen } from "@mam/runtime/ids.ts";
import { ServiceHost, type Part } from "@mam/service-kit/service.ts";
import type { RealtimeConfig } from "./config.ts";
import type { RealtimeContext } from "./context.ts";
import { migrations } from "./db/migrations/index.ts";
import type { RealtimeDb } from "./db/schema.ts";
import { ensureFeedStream } from "@mam/bus/streams.ts";
// --- feed imports ---
// --- ws imports ---
// --- webhooks imports ---

export interface RealtimeOptions {
  clock?: Clock;
  newId?: IdGen;
  logger?: Logger;
}

/**
 * Realtime: renders the mailbox's events into the public feed once, pushes the feed to
 * WebSocket clients (the gateway hands it their upgrades), and delivers it to webhooks.
 */
export class RealtimeService extends ServiceHost<RealtimeDb, RealtimeContext> {
  constructor(
    readonly cfg: RealtimeConfig,
    opts: RealtimeOptions = {},
  ) {
    super({
      name: "realtime",
      env: cfg,
      logger: opts.logger ?? createLogger("realtime", cfg.LOG_LEVEL),
      database: { url: cfg.DATABASE_URL, schema: cfg.DB_SCHEMA, migrations },
      // --- events (webhooks: the Webhook aggregate's own events) ---
      clock: opts.clock,
      newId: opts.newId,
      context: (base) => ({ ...base, cfg }),
      prepare: async (ctx) => void (await ensureFeedStream(ctx.bus, cfg.FEED_RETENTION_S)),
      // --- projections ---
      parts: async (ctx, b) => {
        const parts: Part[] = [];
        // --- feed parts ---
        // --- ws parts ---
        // --- webhooks parts ---
        return parts;
      },
      handlers: (server, ctx, b) => {
        // --- ws handlers ---
        // --- webhooks handlers ---
      },
    });
  }
}
