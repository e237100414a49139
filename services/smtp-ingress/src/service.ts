import type { SMTPServer } from "smtp-server";
import { Objm, type ObjectStore } from "@nats-io/obj";
import { ingestBucketName } from "@mam/contracts/ingest.ts";
import { ensureIngestStream } from "@mam/bus/streams.ts";
import { uuidv7 } from "@mam/runtime/ids.ts";
import type { Service } from "@mam/runtime/lifecycle.ts";
import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { Backbone } from "@mam/service-kit/backbone.ts";
import type { SmtpIngressConfig } from "./config.ts";
import { Directory } from "./smtp/directory.ts";
import { createSmtpServer } from "./smtp/server.ts";
import { tlsMaterial } from "./smtp/tls.ts";

/** SMTP ingress owns no store: only what is in flight, published durably to NATS. */
export class SmtpIngressService implements Service {
  readonly logger: Logger;
  private readonly backbone: Backbone;
  private directory?: Directory;
  private server?: SMTPServer;
  private store?: Promise<ObjectStore>;
  port = 0;

  constructor(
    readonly cfg: SmtpIngressConfig,
    opts: { logger?: Logger } = {},
  ) {
    this.logger = opts.logger ?? createLogger("smtp-ingress", cfg.LOG_LEVEL);
    this.backbone = new Backbone({ name: "smtp-ingress", env: cfg, logger: this.logger, checks: async () => ({ directory: !!this.directory?.ready, smtp: !!this.server }) });
  }

  async start(): Promise<void> {
    const b = this.backbone;
    await b.connect();
    await ensureIngestStream(b.bus);
    this.directory = new Directory(b.bus, b.stream, this.logger, this.cfg.DIRECTORY_SNAPSHOT_WAIT_MS);
    await this.directory.start();
    await waitFor(() => this.directory!.checkCaughtUp(), { timeoutMs: 5 * 60_000, intervalMs: 20, what: "address directory" });
    const hostname = this.cfg.SMTP_HOSTNAME ?? `mx.${this.cfg.MAIL_DOMAIN}`;
    const tls = await tlsMaterial({ cert: this.cfg.SMTP_TLS_CERT, key: this.cfg.SMTP_TLS_KEY, file: this.cfg.SMTP_TLS_FILE, hostname });
    const store = () => (this.store ??= new Objm(b.bus.nc).create(ingestBucketName(b.bus.prefix)));
    this.server = createSmtpServer({ cfg: this.cfg, bus: b.bus, directory: this.directory, store, logger: this.logger, tls, newId: () => uuidv7() });
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(this.cfg.SMTP_PORT, this.cfg.SMTP_HOST, () => resolve());
    });
    this.server.on("error", (err) => this.logger.warn({ err: err.message }, "SMTP connection error"));
    this.port = (this.server.server.address() as { port: number }).port;
    this.logger.info({ smtpPort: this.port, addresses: this.directory.size }, "smtp-ingress listening");
  }

  readiness() {
    return this.backbone.readiness();
  }

  async destroy(): Promise<void> {
    // Stop accepting; let sessions in progress finish (smtp-server waits up to closeTimeout).
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
    this.directory?.stop();
    await this.backbone.close();
  }
}
