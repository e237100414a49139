import type { SMTPServer } from "smtp-server";
import type { ObjectStore } from "@nats-io/obj";
import { ensureIngestStream } from "@mam/bus/streams.ts";
import { ingestStreamName } from "@mam/contracts/ingest.ts";
import { uuidv7 } from "@mam/runtime/ids.ts";
import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import { ServiceHost, type BaseContext, type Part } from "@mam/service-kit/service.ts";
import type { SmtpIngressConfig } from "./config.ts";
import { Directory } from "./smtp/directory.ts";
import { openRawStore } from "./smtp/ingest.ts";
import { smtpMetrics } from "./smtp/metrics.ts";
import { createSmtpServer } from "./smtp/server.ts";
import { tlsMaterial } from "./smtp/tls.ts";

interface IngressContext extends BaseContext<never> {
  directory?: Directory;
  server?: SMTPServer;
}

/** SMTP ingress owns no store: only what is in flight, published durably to NATS. */
export class SmtpIngressService extends ServiceHost<never, IngressContext> {
  port = 0;

  constructor(
    readonly cfg: SmtpIngressConfig,
    opts: { logger?: Logger } = {},
  ) {
    super({
      name: "smtp-ingress",
      env: cfg,
      logger: opts.logger ?? createLogger("smtp-ingress", cfg.LOG_LEVEL),
      context: (base) => ({ ...base }),
      checks: async (ctx) => ({ directory: !!ctx.directory?.ready, smtp: !!ctx.server }),
      parts: (ctx, b) => [this.directoryPart(ctx, b), this.smtpPart(ctx, b)],
      describe: (ctx) => ({ smtpPort: this.port, addresses: ctx.directory?.size }),
    });
  }

  /** RCPT is answered from here: loaded (snapshot, then events) before SMTP listens. */
  private directoryPart(ctx: IngressContext, b: Backbone<never>): Part {
    return {
      start: async () => {
        await ensureIngestStream(b.bus);
        ctx.directory = new Directory(b.bus, b.stream, ctx.logger, this.cfg.DIRECTORY_SNAPSHOT_WAIT_MS);
        await ctx.directory.start();
        await waitFor(() => ctx.directory!.checkCaughtUp(), { timeoutMs: 5 * 60_000, intervalMs: 20, what: "address directory" });
      },
      stop: () => ctx.directory?.stop(),
    };
  }

  private smtpPart(ctx: IngressContext, b: Backbone<never>): Part {
    const { cfg } = this;
    let store: Promise<ObjectStore> | undefined;
    return {
      start: async () => {
        const hostname = cfg.SMTP_HOSTNAME ?? `mx.${cfg.MAIL_DOMAIN}`;
        const tls = await tlsMaterial({ cert: cfg.SMTP_TLS_CERT, key: cfg.SMTP_TLS_KEY, file: cfg.SMTP_TLS_FILE, hostname });
        const metrics = smtpMetrics(b);
        const server = createSmtpServer({
          cfg,
          bus: b.bus,
          directory: ctx.directory!,
          // A failed attempt is not kept: the next large message asks again.
          store: () =>
            (store ??= openRawStore(b.bus.nc, b.bus.prefix, b.bus.replicas, ctx.logger).catch((err: unknown) => {
              store = undefined;
              throw err;
            })),
          logger: ctx.logger,
          tls,
          newId: () => uuidv7(),
          observer: metrics.observer,
        });
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen(cfg.SMTP_PORT, cfg.SMTP_HOST, () => resolve());
        });
        server.on("error", (err) => ctx.logger.warn({ err: err.message }, "SMTP connection error"));
        ctx.server = server;
        metrics.watch(server, ingestStreamName(b.bus.prefix));
        this.port = (server.server.address() as { port: number }).port;
      },
      // Stop accepting; sessions in progress finish (smtp-server waits up to closeTimeout).
      stop: () => (ctx.server ? new Promise<void>((r) => ctx.server!.close(() => r())) : undefined),
    };
  }
}
