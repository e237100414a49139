import { z } from "zod";
import { BaseEnv, LOCAL_DEFAULTS, parseEnv, PortSchema } from "@mam/runtime/config.ts";
import { relaySettings } from "./delivery/transports.ts";

export const Env = BaseEnv.extend({
  DATABASE_URL: z.string().default(LOCAL_DEFAULTS.DATABASE_URL),
  DB_SCHEMA: z.string().default("mailbox"),
  HEALTH_PORT: PortSchema.default(8082),
  /** The platform's own inbox domain. */
  MAIL_DOMAIN: z.string().default("agents.localhost"),
  /** Outbound relay (smtp://user:pass@host:port); direct to MX when unset. */
  SMTP_RELAY_URL: z.string().optional(),
  /**
   * TLS toward the relay: `verify` (STARTTLS required and the certificate verified; implicit
   * TLS for smtps:// URLs), `opportunistic` (STARTTLS when offered, certificate not checked),
   * `none` (never TLS). A `tls=` parameter in the URL's query wins over this.
   */
  SMTP_RELAY_TLS: z.enum(["verify", "opportunistic", "none"]).default("verify"),
  /** The name given in HELO/EHLO, toward the relay and toward MX hosts (default MAIL_DOMAIN). */
  SMTP_HELO_NAME: z
    .string()
    .regex(/^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/, "must be a host name")
    .optional(),
  /**
   * Lets direct-to-MX delivery connect to private, loopback, link-local and other special-use
   * addresses (refused by default, so DNS cannot point our connections into the network).
   */
  OUTBOUND_ALLOW_PRIVATE: z
    .enum(["true", "false"])
    .default("false")
    .transform((v) => v === "true"),
  /**
   * Key of the return-path tokens (bounces+<token>@MAIL_DOMAIN) that let a bounce name the
   * message it is about; at least 32 characters. When unset, derived from the platform's DKIM
   * key (kept in the database: the same for every replica and across restarts).
   */
  BOUNCE_SECRET: z.string().min(32).optional(),
  /** Resolvers for domain verification and MX lookups, comma separated `host[:port]` (system resolvers when unset). */
  DNS_SERVERS: z.string().optional(),
  /**
   * Pauses between tries of a message the relay or MX refused for now (4xx, unreachable):
   * the n-th retry waits the n-th value, the last repeats. Greylisting asks for minutes.
   */
  DELIVERY_RETRY_DELAYS_S: z
    .string()
    .default("60,300,900,1800,3600")
    .transform((v, c) => {
      const delays = v.split(",").map((x) => Number(x.trim()));
      if (!delays.length || delays.some((d) => !Number.isInteger(d) || d < 1 || d > 7 * 86_400)) {
        c.addIssue({ code: "custom", message: "must be whole seconds from 1 to 604800, comma separated" });
        return z.NEVER;
      }
      return delays;
    }),
  /** How often the retry queue is looked at for recipients due another try. */
  DELIVERY_RETRY_POLL_MS: z.coerce.number().int().min(100).max(60_000).default(1_000),
  /** How long after sending a transient failure still gets retried; past it, the message bounces. */
  DELIVERY_GIVE_UP_AFTER_S: z.coerce
    .number()
    .int()
    .min(0)
    .default(2 * 86_400),
  /** Port for direct-to-MX delivery (25 on the internet; tests point it at a local server). */
  MX_PORT: z.coerce.number().int().min(1).max(65535).default(25),
  /** Host custom domains point their MX at (default `mx.<MAIL_DOMAIN>`). */
  MX_HOST: z.string().optional(),
  /** SPF include custom domains add (default `_spf.<MAIL_DOMAIN>`); publish it with your sending IPs. */
  SPF_INCLUDE: z.string().optional(),
  /** DKIM selector of new keys. */
  DKIM_SELECTOR: z
    .string()
    .regex(/^[a-z0-9-]{1,63}$/)
    .default("mam1"),
  /**
   * Days an address released by a deleted inbox or workspace stays held back from other
   * tenants (the tenant that had it may reclaim it at once), so a stranger cannot receive
   * the previous owner's password resets.
   */
  ADDRESS_QUARANTINE_DAYS: z.coerce.number().int().min(0).max(3650).default(30),
  /**
   * Local parts of the platform domain no tenant may take, besides the built-in role and
   * system addresses (RFC 2142, postmaster, mailer-daemon, root, noreply, admin, ...):
   * comma separated, case-insensitive.
   */
  RESERVED_LOCAL_PARTS: z
    .string()
    .default("")
    .transform((v) =>
      v
        .split(",")
        .map((x) => x.trim().toLowerCase())
        .filter(Boolean),
    ),
  /** Addresses (the inbox's own plus aliases) one inbox may have. */
  MAX_ADDRESSES_PER_INBOX: z.coerce.number().int().min(1).max(1000).default(20),
  /** Days a custom domain may stay unverified; then its claim lapses and the name is free again. */
  DOMAIN_CLAIM_TTL_DAYS: z.coerce.number().int().min(1).max(365).default(7),
}).superRefine((env, c) => {
  // A relay URL that cannot work is said at start, not at the first send (never with its password).
  if (!env.SMTP_RELAY_URL) return;
  try {
    relaySettings(env.SMTP_RELAY_URL, env.SMTP_RELAY_TLS, env.SMTP_HELO_NAME ?? env.MAIL_DOMAIN);
  } catch (err) {
    c.addIssue({ code: "custom", path: ["SMTP_RELAY_URL"], message: (err as Error).message });
  }
});
export type MailboxConfig = z.infer<typeof Env>;

export const loadConfig = (env: NodeJS.ProcessEnv = process.env): MailboxConfig => parseEnv(Env, env);
