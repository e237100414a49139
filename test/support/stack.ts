import { randomBytes } from "node:crypto";
import { loadConfig as billingConfig } from "@mam/billing/config.ts";
import { BillingService } from "@mam/billing/service.ts";
import { loadConfig as gatewayConfig } from "@mam/gateway/config.ts";
import { GatewayService } from "@mam/gateway/service.ts";
import { loadConfig as identityConfig } from "@mam/identity/config.ts";
import { IdentityService } from "@mam/identity/service.ts";
import { loadConfig as mailboxConfig } from "@mam/mailbox/config.ts";
import { MailboxService } from "@mam/mailbox/service.ts";
import type { Clock } from "@mam/runtime/ids.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { loadConfig as realtimeConfig } from "@mam/realtime/config.ts";
import { RealtimeService } from "@mam/realtime/service.ts";
import { loadConfig as smtpConfig } from "@mam/smtp-ingress/config.ts";
import { SmtpIngressService } from "@mam/smtp-ingress/service.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { replyOf } from "@mam/testing/contract-reply.ts";
import { apiClient, type ApiCall } from "@mam/testing/http.ts";
import { isolate, type Isolation } from "@mam/testing/isolation.ts";
import { LogCapture } from "@mam/testing/log-capture.ts";

export interface StackOptions {
  gateways?: number;
  /** Start the mailbox service too (default: yes). */
  mailbox?: boolean;
  mailboxEnv?: Record<string, string>;
  /** The mailbox's clock (default: the system's), for a test to move time-bound rules along. */
  mailboxClock?: Clock;
  /** Start smtp-ingress too (default: no). */
  smtp?: boolean;
  smtpEnv?: Record<string, string>;
  gatewayEnv?: Record<string, string>;
  /** Realtime replicas to start (default: none). */
  realtime?: number;
  realtimeEnv?: Record<string, string>;
  /** Start billing too (default: no). */
  billing?: boolean;
  billingEnv?: Record<string, string>;
  /** Mailbox replicas to start (default: 1; `mailbox: false` starts none). */
  mailboxes?: number;
  /** Identity replicas to start (default: 1); more than one start at the same moment, as a scaled deployment's do. */
  identities?: number;
  /** smtp-ingress replicas to start when `smtp` is set (default: 1), each on its own port; more than one start at the same moment. */
  smtps?: number;
  /** Billing replicas to start when `billing` is set (default: 1); more than one start at the same moment. */
  billings?: number;
  logLevel?: string;
  /** Another NATS server than the machine's (a private one a test may kill). */
  natsUrl?: string;
  /** NATS settings of each service (its own user on a locked-down server), over the file's own. */
  natsEnv?: (service: StackService) => Record<string, string>;
}

export type StackService = "identity" | "mailbox" | "smtp-ingress" | "gateway" | "realtime" | "billing";

/**
 * Identity and N gateways (and the other services the options ask for, each as one or more
 * replicas), in this process, on this file's own schema, subject prefix and scope keys,
 * against the real NATS, Postgres and Redis. Tests speak HTTP to it.
 */
export class Stack {
  readonly iso: Isolation = isolate();
  readonly operatorKey = `sa_${randomBytes(32).toString("base64url")}`;
  readonly logs = new LogCapture();
  identity!: IdentityService;
  /** The identity replicas started beside `identity` (option `identities`). */
  identityReplicas: IdentityService[] = [];
  mailbox?: MailboxService;
  /** The mailbox replicas started beside `mailbox` (option `mailboxes`). */
  mailboxReplicas: MailboxService[] = [];
  smtp?: SmtpIngressService;
  /** The smtp-ingress replicas started beside `smtp` (option `smtps`). */
  smtpReplicas: SmtpIngressService[] = [];
  readonly mailDomain = "agents.test";
  gateways: GatewayService[] = [];
  realtimes: RealtimeService[] = [];
  billing?: BillingService;
  /** The billing replicas started beside `billing` (option `billings`). */
  billingReplicas: BillingService[] = [];
  /** The client of the first gateway. */
  api!: ApiCall;

  constructor(private readonly o: StackOptions = {}) {
    if (o.natsUrl) {
      this.iso.env.NATS_URL = o.natsUrl;
      this.iso.urls.NATS_URL = o.natsUrl;
    }
  }

  identityEnv(): Record<string, string> {
    return { ...this.iso.env, ...this.o.natsEnv?.("identity"), DB_SCHEMA: this.iso.schema("identity"), SUPER_ADMIN_KEY: this.operatorKey };
  }

  async startIdentity(): Promise<IdentityService> {
    this.identity = await this.newIdentity();
    return this.identity;
  }

  /** One more identity replica beside `identity`, on the same schema. */
  async startIdentityReplica(): Promise<IdentityService> {
    const i = await this.newIdentity();
    this.identityReplicas.push(i);
    return i;
  }

  private async newIdentity(): Promise<IdentityService> {
    const i = new IdentityService(identityConfig(this.identityEnv()), { logger: createLogger("identity", this.o.logLevel ?? "info", this.logs) });
    await i.start();
    return i;
  }

  async startMailbox(): Promise<MailboxService> {
    this.mailbox = await this.newMailbox();
    return this.mailbox;
  }

  /** One more mailbox replica beside `mailbox`, on the same schema. */
  async startMailboxReplica(): Promise<MailboxService> {
    const m = await this.newMailbox();
    this.mailboxReplicas.push(m);
    return m;
  }

  private async newMailbox(): Promise<MailboxService> {
    const cfg = mailboxConfig({
      ...this.iso.env,
      ...this.o.natsEnv?.("mailbox"),
      DB_SCHEMA: this.iso.schema("mailbox"),
      MAIL_DOMAIN: this.mailDomain,
      ...this.o.mailboxEnv,
    });
    const m = new MailboxService(cfg, { logger: createLogger("mailbox", this.o.logLevel ?? "info", this.logs), clock: this.o.mailboxClock });
    await m.start();
    return m;
  }

  async startSmtp(): Promise<SmtpIngressService> {
    this.smtp = await this.newSmtp();
    return this.smtp;
  }

  /** One more smtp-ingress replica beside `smtp`, on a port of its own (and the same certificate file). */
  async startSmtpReplica(): Promise<SmtpIngressService> {
    const r = await this.newSmtp();
    this.smtpReplicas.push(r);
    return r;
  }

  private async newSmtp(): Promise<SmtpIngressService> {
    const cfg = smtpConfig({
      ...this.iso.env,
      ...this.o.natsEnv?.("smtp-ingress"),
      SMTP_PORT: "0",
      SMTP_HOST: "127.0.0.1",
      MAIL_DOMAIN: this.mailDomain,
      SMTP_TLS_FILE: `/tmp/${this.iso.tag}-smtp-tls.json`,
      ...this.o.smtpEnv,
    });
    const r = new SmtpIngressService(cfg, { logger: createLogger("smtp-ingress", this.o.logLevel ?? "info", this.logs) });
    await r.start();
    return r;
  }

  /** One more realtime replica (its WebSocket port chosen by the system, on loopback). */
  async startRealtime(env: Record<string, string> = {}): Promise<RealtimeService> {
    const cfg = realtimeConfig({
      ...this.iso.env,
      ...this.o.natsEnv?.("realtime"),
      DB_SCHEMA: this.iso.schema("realtime"),
      WS_PORT: "0",
      WS_HOST: "127.0.0.1",
      WEBHOOK_ALLOW_PRIVATE: "true",
      ...this.o.realtimeEnv,
      ...env,
    });
    const r = new RealtimeService(cfg, { logger: createLogger("realtime", this.o.logLevel ?? "info", this.logs) });
    await r.start();
    this.realtimes.push(r);
    return r;
  }

  /** Billing (its schema kept across restarts: a test may stop it and start another). */
  async startBilling(env: Record<string, string> = {}): Promise<BillingService> {
    this.billing = await this.newBilling(env);
    return this.billing;
  }

  /** One more billing replica beside `billing`, on the same schema. */
  async startBillingReplica(env: Record<string, string> = {}): Promise<BillingService> {
    const b = await this.newBilling(env);
    this.billingReplicas.push(b);
    return b;
  }

  private async newBilling(env: Record<string, string>): Promise<BillingService> {
    const cfg = billingConfig({ ...this.iso.env, ...this.o.natsEnv?.("billing"), DB_SCHEMA: this.iso.schema("billing"), ...this.o.billingEnv, ...env });
    const b = new BillingService(cfg, { logger: createLogger("billing", this.o.logLevel ?? "info", this.logs) });
    await b.start();
    return b;
  }

  /** One more gateway; `env`: settings of its own over the stack's. */
  async startGateway(env: Record<string, string> = {}): Promise<GatewayService> {
    const cfg = gatewayConfig({
      ...this.iso.env,
      ...this.o.natsEnv?.("gateway"),
      SCOPE_PRIVATE_KEY: Buffer.from(this.iso.scopeKeys.privateKeyPem).toString("base64"),
      ...this.o.gatewayEnv,
      ...env,
    });
    const g = new GatewayService(cfg, { logger: createLogger("gateway", this.o.logLevel ?? "info", this.logs) });
    await g.start();
    this.gateways.push(g);
    return g;
  }

  async start(): Promise<this> {
    await Promise.all([this.startIdentity(), ...times(this.o.identities, () => this.startIdentityReplica())]);
    if (this.o.mailbox !== false) {
      await this.startMailbox();
      for (let i = 1; i < (this.o.mailboxes ?? 1); i++) await this.startMailboxReplica();
    }
    if (this.o.smtp) await Promise.all([this.startSmtp(), ...times(this.o.smtps, () => this.startSmtpReplica())]);
    for (let i = 0; i < (this.o.realtime ?? 0); i++) await this.startRealtime();
    if (this.o.billing) await Promise.all([this.startBilling(), ...times(this.o.billings, () => this.startBillingReplica())]);
    for (let i = 0; i < (this.o.gateways ?? 1); i++) await this.startGateway();
    this.api = this.client(0);
    return this;
  }

  client(i: number): ApiCall {
    return apiClient(`http://127.0.0.1:${this.gateways[i]!.port}`);
  }

  async stop(): Promise<void> {
    for (const g of this.gateways) await g.destroy();
    for (const r of this.smtpReplicas) await r.destroy();
    await this.smtp?.destroy();
    for (const r of this.realtimes) await r.destroy();
    for (const b of this.billingReplicas) await b.destroy();
    await this.billing?.destroy();
    for (const m of this.mailboxReplicas) await m.destroy();
    await this.mailbox?.destroy();
    for (const i of this.identityReplicas) await i.destroy();
    await this.identity?.destroy();
    await this.iso.cleanup();
  }
}

/** Starts `count - 1` more (replicas beside the first), all at once. */
function times<T>(count: number | undefined, start: () => Promise<T>): Promise<T>[] {
  return Array.from({ length: Math.max(0, (count ?? 1) - 1) }, start);
}

/** Provisions a tenant through the operator key, as an operator would with curl; the answer is typed by its contract. */
export async function provisionTenant(s: Stack, name = "Tenant") {
  return replyOf(RpcContracts.identity.tenantCreate, await s.api("POST", "/v1/tenants", { key: s.operatorKey, body: { name } }), 201);
}
