import { z } from "zod";
import { FEED_RETENTION_DEFAULT_S } from "@mam/contracts/realtime-feed.ts";
import { MAX_WEBHOOKS_PER_TENANT } from "@mam/contracts/webhooks-api.ts";
import { BaseEnv, LOCAL_DEFAULTS, parseEnv, PortSchema } from "@mam/runtime/config.ts";

export const Env = BaseEnv.extend({
  DATABASE_URL: z.string().default(LOCAL_DEFAULTS.DATABASE_URL),
  DB_SCHEMA: z.string().default("realtime"),
  HEALTH_PORT: PortSchema.default(8085),
  // The feed (feed/)
  /** How long the public feed keeps events: how far back a WebSocket client may resume (seconds). */
  FEED_RETENTION_S: z.coerce
    .number()
    .int()
    .min(60)
    .max(30 * 86_400)
    .default(FEED_RETENTION_DEFAULT_S),
  // The WebSocket door (ws/)
  /**
   * Where the internal WebSocket door listens (the gateway hands it its clients' upgrades; never
   * expose it): loopback by default, `0.0.0.0` in containers, where the gateway is another host.
   */
  WS_HOST: z.string().default("127.0.0.1"),
  WS_PORT: PortSchema.default(8086),
  /**
   * The host the gateway connects to for this replica: a name or address, or `auto` for the
   * first non-internal IPv4 address of the machine (containers running several replicas).
   */
  WS_ADVERTISE_HOST: z.string().min(1).default("127.0.0.1"),
  /** A `ping` frame (and a protocol ping) this often, in seconds; a client silent for two intervals is dropped. */
  WS_PING_INTERVAL_S: z.coerce.number().int().min(1).max(3600).default(30),
  /** Bytes waiting to go out to one client (its socket's buffer and frames queued here); past it: closed with 4008. */
  WS_MAX_BUFFERED_BYTES: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .max(256 * 1024 * 1024)
    .default(4 * 1024 * 1024),
  /** Connections one tenant may hold on one replica; the next is closed with 4029. */
  WS_MAX_CONNECTIONS_PER_TENANT: z.coerce.number().int().min(1).max(1_000_000).default(1000),
  /** Frames a client may send per second (a burst of as many); the rest are dropped with an error frame. */
  WS_CLIENT_FRAMES_PER_S: z.coerce.number().int().min(1).max(10_000).default(20),
  /**
   * How long a subscribe frame naming a workspace or inbox this replica's directory does not
   * know (yet: it follows identity and the mailbox by a moment) waits before it is refused, in ms.
   * Every refusal takes this long, so its timing does not tell whether the id exists.
   */
  WS_DIRECTORY_WAIT_MS: z.coerce.number().int().min(0).max(60_000).default(2_000),
  /**
   * How long a revoked key, deleted workspace or deleted inbox is remembered, in seconds: a
   * connection arriving with a token minted just before is closed too (tokens live at most 60 s).
   */
  WS_REVOKED_MEMORY_S: z.coerce.number().int().min(60).max(3600).default(120),
  // Webhooks (webhooks/)
  /**
   * Lets webhook URLs name private, loopback, link-local and other special-use addresses, and
   * deliveries connect to them (a development machine, a receiver inside the same network).
   * Off: refused at create and update for a literal address, and at every attempt after the
   * host name is resolved.
   */
  WEBHOOK_ALLOW_PRIVATE: z
    .enum(["true", "false"])
    .default("false")
    .transform((v) => v === "true"),
  /** How long one delivery attempt may take in all (lookup, connect, request, response), in ms. */
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  /** The first retry's delay, in ms; later ones grow from it (decorrelated jitter). */
  WEBHOOK_RETRY_BASE_MS: z.coerce.number().int().min(10).max(3_600_000).default(10_000),
  /** The longest delay between two attempts of one delivery, in ms. */
  WEBHOOK_RETRY_MAX_DELAY_MS: z.coerce
    .number()
    .int()
    .min(10)
    .max(24 * 3_600_000)
    .default(3_600_000),
  /** How long a failing delivery is retried after its first attempt (s); then it is given up and its webhook marked failing. */
  WEBHOOK_RETRY_WINDOW_S: z.coerce
    .number()
    .int()
    .min(1)
    .max(7 * 86_400)
    .default(8 * 3600),
  /** Requests in flight from one replica to one webhook: a slow endpoint holds this many, no more. */
  WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT: z.coerce.number().int().min(1).max(1000).default(16),
  /**
   * Requests in flight from one replica to one tenant's webhooks together: a tenant's many slow
   * or dead endpoints hold this many slots, and the rest stay for the other tenants.
   */
  WEBHOOK_MAX_IN_FLIGHT_PER_TENANT: z.coerce.number().int().min(1).max(10_000).default(64),
  /** Requests in flight from one replica to all webhooks together. */
  WEBHOOK_MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(10_000).default(256),
  /** How often each replica looks for deliveries whose retry is due or whose lease ran out (ms). */
  WEBHOOK_POLL_MS: z.coerce.number().int().min(20).max(60_000).default(1_000),
  /** Delivery log rows (and finished deliveries) older than this many days are pruned. */
  WEBHOOK_LOG_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
  /** Most webhooks one tenant may have, all its workspaces together. */
  MAX_WEBHOOKS_PER_TENANT: z.coerce.number().int().min(1).max(10_000).default(MAX_WEBHOOKS_PER_TENANT),
});
export type RealtimeConfig = z.infer<typeof Env>;

export const loadConfig = (env: NodeJS.ProcessEnv = process.env): RealtimeConfig => parseEnv(Env, env);
