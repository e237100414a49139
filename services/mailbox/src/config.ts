import { z } from "zod";
import { BaseEnv, LOCAL_DEFAULTS, parseEnv, PortSchema } from "@mam/runtime/config.ts";

const Env = BaseEnv.extend({
  DATABASE_URL: z.string().default(LOCAL_DEFAULTS.DATABASE_URL),
  DB_SCHEMA: z.string().default("mailbox"),
  HEALTH_PORT: PortSchema.default(8082),
  /** The platform's own inbox domain. */
  MAIL_DOMAIN: z.string().default("agents.localhost"),
  /** Outbound relay (smtp://user:pass@host:port); direct to MX when unset. */
  SMTP_RELAY_URL: z.string().optional(),
  /** Resolvers for domain verification and MX lookups, comma separated (system resolvers when unset). */
  DNS_SERVERS: z.string().optional(),
});
export type MailboxConfig = z.infer<typeof Env>;

export const loadConfig = (env: NodeJS.ProcessEnv): MailboxConfig => parseEnv(Env, env);
