import { z } from "zod";
import { BaseEnv, parseEnv, PortSchema } from "@mam/runtime/config.ts";

export const Env = BaseEnv.extend({
  HEALTH_PORT: PortSchema.default(8083),
  /** The public SMTP door (25 in production). */
  SMTP_PORT: PortSchema.default(2525),
  SMTP_HOST: z.string().default("0.0.0.0"),
  /** The name this server gives in its greeting and Received headers. */
  SMTP_HOSTNAME: z.string().optional(),
  MAIL_DOMAIN: z.string().default("agents.localhost"),
  /** Largest message accepted, announced in SIZE; over it: 552 5.3.4. */
  SMTP_MAX_MESSAGE_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(25 * 1024 * 1024),
  SMTP_MAX_RECIPIENTS: z.coerce.number().int().positive().default(100),
  /**
   * RCPTs one connection may name that no inbox has (550 5.1.1) since it last delivered a
   * message; past it 421 4.7.0 and the connection closed (see server.ts), so guessing
   * addresses costs a new connection every so many.
   */
  SMTP_MAX_UNKNOWN_RECIPIENTS: z.coerce.number().int().positive().default(20),
  /**
   * Unknown RCPTs one client address (an IPv4 address, an IPv6 /64) may name across its
   * connections within SMTP_UNKNOWN_RECIPIENTS_WINDOW_S (a sliding window, per replica);
   * past it, everything from that address is told 421 4.7.0 until the window lets up, so
   * reconnecting does not let it go on guessing addresses. 0 (the default): no such cap, as
   * anyone could otherwise get a shared provider's sending address refused for everyone
   * (see the README).
   */
  SMTP_MAX_UNKNOWN_RECIPIENTS_PER_IP: z.coerce.number().int().min(0).default(0),
  SMTP_UNKNOWN_RECIPIENTS_WINDOW_S: z.coerce.number().int().positive().default(600),
  /** Open connections in all; beyond it a new one is told 421 and closed. */
  SMTP_MAX_CLIENTS: z.coerce.number().int().positive().default(500),
  /** Open connections from one address; beyond it 421 4.7.0 and closed. */
  SMTP_MAX_CLIENTS_PER_IP: z.coerce.number().int().positive().default(20),
  /**
   * Message bytes held in memory across all connections at once (data still arriving, or
   * waiting to be recorded). A message that would pass it is refused with 452 4.3.1, to be
   * sent again later. At least SMTP_MAX_MESSAGE_BYTES, or the largest message could never pass.
   */
  SMTP_MAX_BUFFERED_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(256 * 1024 * 1024),
  /** Idle time allowed between commands before the connection is closed. */
  SMTP_IDLE_TIMEOUT_MS: z.coerce.number().int().positive().default(60_000),
  /**
   * The longest the message data of one transaction may take to arrive, however steadily it
   * trickles (the idle timeout restarts with every byte); then 421 4.4.2 and the connection closes.
   */
  SMTP_DATA_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .positive()
    .default(10 * 60_000),
  /** PEM certificate and key for STARTTLS; a self-signed pair is generated when unset. */
  SMTP_TLS_CERT: z.string().optional(),
  SMTP_TLS_KEY: z.string().optional(),
  SMTP_TLS_FILE: z.string().default(".data/smtp-tls.json"),
  /**
   * How long to keep asking the mailbox for the address snapshot at start (it may be
   * starting too) before replaying every mailbox event instead.
   */
  DIRECTORY_SNAPSHOT_WAIT_MS: z.coerce.number().int().min(0).default(10_000),
  /** Messages up to this size travel inline in the ingest stream; larger ones via the object store. */
  INGEST_INLINE_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .max(900_000)
    .default(768 * 1024),
}).refine((e) => e.SMTP_MAX_BUFFERED_BYTES >= e.SMTP_MAX_MESSAGE_BYTES, {
  path: ["SMTP_MAX_BUFFERED_BYTES"],
  message: "must be at least SMTP_MAX_MESSAGE_BYTES",
});
export type SmtpIngressConfig = z.infer<typeof Env>;

export const loadConfig = (env: NodeJS.ProcessEnv = process.env): SmtpIngressConfig => parseEnv(Env, env);
