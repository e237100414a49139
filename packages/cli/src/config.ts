import { z } from "zod";
import { BaseEnv, ConfigError, parseEnv } from "@mam/runtime/config.ts";
import { CliError } from "./context.ts";

/**
 * What `mam` takes from the environment besides its options' own (MAM_URL and MAM_KEY, read by
 * commander with the options they stand for). This file is the CLI's only reader of the
 * environment, as each service's config.ts is its own: a bad setting is one message naming it.
 */
export const CliEnv = BaseEnv.pick({ NATS_URL: true, NATS_PREFIX: true, NATS_USER: true, NATS_PASSWORD: true, NATS_PASSWORD_FILE: true }).extend({
  // Warnings (an unauthenticated server, say) would mix with a command's output: errors only, unless asked.
  LOG_LEVEL: BaseEnv.shape.LOG_LEVEL.unwrap().default("error"),
  /** `name=url,…`: more health endpoints for `mam status` to ask, beside --health. */
  MAM_HEALTH: z.string().default(""),
});

export type CliConfig = z.infer<typeof CliEnv>;

/** The CLI's settings; a bad one fails the command (`error: invalid configuration: … (CONFIG)`). */
export function loadCliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  try {
    return parseEnv(CliEnv, env);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, "CONFIG");
    throw err;
  }
}
