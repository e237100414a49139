import { z } from "zod";
import { FEED_RETENTION_DEFAULT_S } from "@mam/contracts/realtime-feed.ts";
import { BaseEnv, LOCAL_DEFAULTS, parseEnv, PortSchema } from "@mam/runtime/config.ts";

const Env = BaseEnv.extend({
  DATABASE_URL: z.string().default(LOCAL_DEFAULTS.DATABASE_URL),
  DB_SCHEMA: z.string().default("realtime"),
  HEALTH_PORT: PortSchema.default(8085),
  // --- feed (feed/) ---
  /** How long the public feed keeps events: how far back a WebSocket client may resume (seconds). */
  FEED_RETENTION_S: z.coerce
    .number()
    .int()
    .min(60)
    .max(30 * 86_400)
    .default(FEED_RETENTION_DEFAULT_S),
  // --- WebSocket (ws/) ---
  // --- webhooks (webhooks/) ---
});
export type RealtimeConfig = z.infer<typeof Env>;

export const loadConfig = (env: NodeJS.ProcessEnv = process.env): RealtimeConfig => parseEnv(Env, env);
