import { MAILBOX_CONTEXT, parseMailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { Clock, IdGen } from "@mam/runtime/ids.ts";
import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import { ownEventsProjection } from "@mam/service-kit/projection.ts";
import { RecentlyApplied } from "@mam/service-kit/recent.ts";
import { ServiceHost, type Part } from "@mam/service-kit/service.ts";
import { lapsedClaimSweeper } from "./commands/domain-claims.ts";
import { ensurePlatformKey } from "./commands/platform-domain.ts";
import { workspaceEndsConsumer } from "./commands/workspace-ends.ts";
import type { MailboxConfig } from "./config.ts";
import type { MailboxContext } from "./context.ts";
import { migrations } from "./db/migrations/index.ts";
import type { MailboxDb } from "./db/schema.ts";
import { inboundWorker } from "./delivery/inbound.ts";
import { FailureNotices } from "./delivery/failure-notices.ts";
import { settledAtSend } from "./delivery/settled-at-send.ts";
import { Outbound } from "./delivery/outbound.ts";
import { deliveryWorker } from "./delivery/worker.ts";
import { makeResolver } from "./dns/verify.ts";
import { applyMailboxEvent, PROJECTION } from "./projections/mailbox-read-model.ts";
import { READ_MODEL_TABLES } from "./projections/read-model-tables.ts";
import { defaultLimitsProjection, planLimitsProjection, tenantPausesProjection } from "./commands/plan-limits.ts";
import { registerMailboxRpc } from "./rpc/handlers.ts";

export interface MailboxOptions {
  clock?: Clock;
  newId?: IdGen;
  logger?: Logger;
}

/** Inboxes, addresses, domains, messages and threads, drafts, lists; outbound delivery. */
export class MailboxService extends ServiceHost<MailboxDb, MailboxContext> {
  constructor(
    readonly cfg: MailboxConfig,
    opts: MailboxOptions = {},
  ) {
    super({
      name: "mailbox",
      env: cfg,
      logger: opts.logger ?? createLogger("mailbox", cfg.LOG_LEVEL),
      database: { url: cfg.DATABASE_URL, schema: cfg.DB_SCHEMA, migrations },
      events: { context: MAILBOX_CONTEXT, projection: PROJECTION },
      clock: opts.clock,
      newId: opts.newId,
      context: (base) => {
        const settled = new RecentlyApplied(10_000);
        return { ...base, cfg, settledAtSend: settled, committed: (envelopes) => settled.add(settledAtSend(envelopes)) };
      },
      projections: (ctx) => [
        ownEventsProjection({
          name: PROJECTION,
          context: MAILBOX_CONTEXT,
          db: ctx.db,
          parse: parseMailboxEvent,
          apply: applyMailboxEvent,
          tables: READ_MODEL_TABLES,
        }),
        planLimitsProjection(ctx.db),
        defaultLimitsProjection(ctx.db),
        tenantPausesProjection(ctx.db),
      ],
      prepare: async (ctx) => void (await ensurePlatformKey(ctx.db, cfg.DKIM_SELECTOR, ctx.clock())),
      parts: async (ctx, b) => {
        const outbound = new Outbound({
          relayUrl: cfg.SMTP_RELAY_URL,
          relayTls: cfg.SMTP_RELAY_TLS,
          resolver: makeResolver(cfg.DNS_SERVERS),
          heloName: cfg.SMTP_HELO_NAME ?? cfg.MAIL_DOMAIN,
          mxPort: cfg.MX_PORT,
          allowPrivate: cfg.OUTBOUND_ALLOW_PRIVATE,
        });
        const delivery = deliveryWorker(ctx, b, outbound);
        const parts: Part[] = [
          { start: () => undefined, stop: () => outbound.close() },
          delivery.consumer,
          delivery.retries,
          new FailureNotices(ctx, outbound),
          await inboundWorker(ctx, b),
        ];
        parts.push(workspaceEndsConsumer(ctx, b), lapsedClaimSweeper(ctx));
        return parts;
      },
      handlers: (server, ctx, b) => registerMailboxRpc(server, ctx, b.stream),
      describe: () => ({ mailDomain: cfg.MAIL_DOMAIN }),
    });
  }
}
