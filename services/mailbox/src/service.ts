import type { DurableConsumer } from "@mam/bus/consumer.ts";
import { RpcServer } from "@mam/bus/rpc.ts";
import { systemClock, uuidv7, type Clock, type IdGen } from "@mam/runtime/ids.ts";
import { RecentlyApplied } from "@mam/service-kit/recent.ts";
import type { Service } from "@mam/runtime/lifecycle.ts";
import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import { Backbone } from "@mam/service-kit/backbone.ts";
import type { MailboxConfig } from "./config.ts";
import type { MailboxContext } from "./context.ts";
import { migrations } from "./db/migrations/index.ts";
import type { MailboxDb } from "./db/schema.ts";
import { ensurePlatformKey } from "./commands/platform-domain.ts";
import { Outbound } from "./delivery/outbound.ts";
import { inboundWorker } from "./delivery/inbound.ts";
import type { RetryQueue } from "./delivery/retry-queue.ts";
import { deliveryWorker } from "./delivery/worker.ts";
import { makeResolver } from "./dns/verify.ts";
import { startMailboxProjection } from "./projections/start.ts";
import { registerMailboxRpc } from "./rpc/handlers.ts";

export interface MailboxOptions {
  clock?: Clock;
  newId?: IdGen;
  logger?: Logger;
}

/** Inboxes and their addresses (messages, threads, drafts, lists and domains follow). */
export class MailboxService implements Service {
  readonly logger: Logger;
  private readonly backbone: Backbone<MailboxDb>;
  private consumer?: DurableConsumer;
  private delivery?: DurableConsumer;
  private retries?: RetryQueue;
  private inbound?: DurableConsumer;
  private outbound?: Outbound;
  private rpc?: RpcServer;
  private caughtUp = false;

  constructor(
    readonly cfg: MailboxConfig,
    private readonly opts: MailboxOptions = {},
  ) {
    this.logger = opts.logger ?? createLogger("mailbox", cfg.LOG_LEVEL);
    this.backbone = new Backbone<MailboxDb>({
      name: "mailbox",
      env: cfg,
      logger: this.logger,
      database: { url: cfg.DATABASE_URL, schema: cfg.DB_SCHEMA, migrations },
      checks: async () => ({ readModel: this.caughtUp }),
    });
  }

  async start(): Promise<void> {
    const b = this.backbone;
    await b.connect();
    const ctx: MailboxContext = {
      cfg: this.cfg,
      db: b.db,
      bus: b.bus,
      logger: this.logger,
      clock: this.opts.clock ?? systemClock,
      newId: this.opts.newId ?? (() => uuidv7()),
      recent: new RecentlyApplied(),
    };
    this.consumer = await startMailboxProjection(ctx, b);
    await ensurePlatformKey(ctx.db, this.cfg.DKIM_SELECTOR, ctx.clock());
    this.caughtUp = true;
    this.outbound = new Outbound(this.cfg.SMTP_RELAY_URL, makeResolver(this.cfg.DNS_SERVERS), this.cfg.MAIL_DOMAIN, this.cfg.MX_PORT);
    const delivery = deliveryWorker(ctx, b, this.outbound);
    this.delivery = delivery.consumer;
    this.retries = delivery.retries;
    await this.delivery.start();
    this.retries.start();
    this.inbound = await inboundWorker(ctx, b);
    await this.inbound.start();
    this.rpc = new RpcServer(b.bus, "mailbox", b.verifier, this.logger);
    registerMailboxRpc(this.rpc, ctx, b.stream);
    this.logger.info({ healthPort: this.cfg.HEALTH_PORT, mailDomain: this.cfg.MAIL_DOMAIN }, "mailbox started");
  }

  readiness() {
    return this.backbone.readiness();
  }

  async destroy(): Promise<void> {
    await this.rpc?.close();
    await this.inbound?.stop();
    await this.retries?.stop();
    await this.delivery?.stop();
    await this.consumer?.stop();
    this.outbound?.close();
    await this.backbone.close();
  }
}
