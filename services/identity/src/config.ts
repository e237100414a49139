import { z } from "zod";
import { BaseEnv, LOCAL_DEFAULTS, parseEnv } from "@mam/runtime/config.ts";

export const Env = BaseEnv.extend({
  DATABASE_URL: z.string().default(LOCAL_DEFAULTS.DATABASE_URL),
  DB_SCHEMA: z.string().default("identity"),
  HEALTH_PORT: z.coerce.number().int().min(0).max(65535).default(8081),
  /** The operator's key. When unset, one is generated, stored hashed and printed once. */
  SUPER_ADMIN_KEY: z
    .string()
    .regex(/^sa_[A-Za-z0-9_-]{22,200}$/, "must be sa_ followed by at least 22 URL-safe characters")
    .optional(),
});
export type IdentityConfig = z.infer<typeof Env>;

export const loadConfig = (env: NodeJS.ProcessEnv = process.env): IdentityConfig => parseEnv(Env, env);
