import { z } from "zod";
import { BaseEnv, parseEnv, PortSchema } from "@mam/runtime/config.ts";

const Env = BaseEnv.extend({
  HEALTH_PORT: PortSchema.default(8083),
  /** The public SMTP door (25 in production). */
  SMTP_PORT: PortSchema.default(2525),
});
export type SmtpIngressConfig = z.infer<typeof Env>;

export const loadConfig = (env: NodeJS.ProcessEnv = process.env): SmtpIngressConfig => parseEnv(Env, env);
