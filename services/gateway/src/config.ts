import { z } from "zod";
import { BaseEnv, LOCAL_DEFAULTS, parseEnv, PortSchema } from "@mam/runtime/config.ts";

const Env = BaseEnv.extend({
  PORT: PortSchema.default(8080),
  HOST: z.string().default("0.0.0.0"),
  REDIS_URL: z.string().default(LOCAL_DEFAULTS.REDIS_URL),
  /** Requests each key may make per window; over it: 429 with Retry-After. */
  RATE_LIMIT_MAX: z.coerce.number().int().positive().default(600),
  RATE_LIMIT_WINDOW_S: z.coerce.number().int().positive().default(60),
  /**
   * Largest JSON body accepted (bytes); over it: 413. Room for the 10 MiB of attachments a
   * message may carry, base64-encoded; bodies beyond one NATS message travel through the
   * bus's object store.
   */
  BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .max(64 * 1024 * 1024)
    .default(16 * 1024 * 1024),
  /** Request bodies over 1 MiB in flight at once, in all and per key; beyond: 429 with Retry-After. */
  LARGE_BODIES_IN_FLIGHT: z.coerce.number().int().positive().default(8),
  LARGE_BODIES_PER_KEY: z.coerce.number().int().positive().default(2),
  /** How long a resolved key is trusted without asking identity again. Revocations evict at once. */
  KEY_CACHE_TTL_S: z.coerce.number().int().positive().default(30),
  SCOPE_TOKEN_TTL_S: z.coerce.number().int().positive().max(60).default(30),
  /** Longer than a service's worst-case command (its transaction, then up to 2 s waiting for the relay), so a slow command is not reported as failed while it succeeds. */
  RPC_TIMEOUT_MS: z.coerce.number().int().positive().default(15_000),
});
export type GatewayConfig = z.infer<typeof Env>;

export const loadConfig = (env: NodeJS.ProcessEnv = process.env): GatewayConfig => parseEnv(Env, env);
