import { z } from "zod";
import { BaseEnv, LOCAL_DEFAULTS, parseEnv, PortSchema } from "@mam/runtime/config.ts";

const Env = BaseEnv.extend({
  DATABASE_URL: z.string().default(LOCAL_DEFAULTS.DATABASE_URL),
  DB_SCHEMA: z.string().default("realtime"),
  HEALTH_PORT: PortSchema.default(8085),
  // --- feed (feed/) ---
  // --- WebSocket (ws/) ---
  // --- webhooks (webhooks/) ---
});
export type RealtimeConfig = z.infer<typeof Env>;

export const loadConfig = (env: NodeJS.ProcessEnv = process.env): RealtimeConfig => parseEnv(Env, env);
