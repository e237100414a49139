import { ensureFeedStream } from "@mam/bus/streams.ts";
import { parseRealtimeEvent, REALTIME_CONTEXT } from "@mam/contracts/realtime-events.ts";
import type { Clock, IdGen } from "@mam/runtime/ids.ts";
import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import { ownEventsProjection } from "@mam/service-kit/projection.ts";
import { ServiceHost } from "@mam/service-kit/service.ts";
import type { RealtimeConfig } from "./config.ts";
import type { RealtimeContext } from "./context.ts";
import { migrations } from "./db/migrations/index.ts";
import type { RealtimeDb } from "./db/schema.ts";
import { FEED_DURABLE, FeedRenderer } from "./feed/renderer.ts";
import { applyRealtimeEvent, PROJECTION } from "./webhooks/projection.ts";
import { webhookParts } from "./webhooks/parts.ts";
import { registerWebhookRpc } from "./webhooks/rpc.ts";
import { WebSocketPart, webSocketPartOf } from "./ws/part.ts";

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
  /** Whether this replica is the one rendering the feed now (the others stand by). */
  readonly rendering: () => boolean;

  constructor(
    readonly cfg: RealtimeConfig,
    opts: RealtimeOptions = {},
  ) {
    let renderer: FeedRenderer | undefined;
    super({
      name: "realtime",
      env: cfg,
      logger: opts.logger ?? createLogger("realtime", cfg.LOG_LEVEL),
      database: { url: cfg.DATABASE_URL, schema: cfg.DB_SCHEMA, migrations },
      events: { context: REALTIME_CONTEXT, projection: PROJECTION },
      clock: opts.clock,
      newId: opts.newId,
      context: (base) => ({ ...base, cfg }),
      prepare: async (ctx) => void (await ensureFeedStream(ctx.bus, cfg.FEED_RETENTION_S)),
      projections: (ctx) => [
        ownEventsProjection({ name: PROJECTION, context: REALTIME_CONTEXT, db: ctx.db, parse: parseRealtimeEvent, apply: applyRealtimeEvent }),
      ],
      parts: (ctx, b) => {
        b.watchConsumerLag(b.stream, FEED_DURABLE);
        return [(renderer = new FeedRenderer(ctx, { stream: b.stream })), new WebSocketPart(cfg, ctx, b), ...webhookParts(ctx, b)];
      },
      handlers: (server, ctx) => {
        webSocketPartOf(ctx)?.serve(server);
        registerWebhookRpc(server, ctx);
      },
    });
    this.rendering = () => renderer?.active ?? false;
  }
}
