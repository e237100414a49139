import { inject } from "vitest";
import { LOCAL_DEFAULTS } from "@mam/runtime/config.ts";
import { testEnv } from "./config.ts";

export interface ServerUrls {
  NATS_URL: string;
  DATABASE_URL: string;
  REDIS_URL: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    servers?: ServerUrls;
  }
}

/**
 * The servers tests talk to: containers started by the global setup (when no URL was
 * given and a Docker engine exists), else the URLs given, else the machine's own servers.
 */
export function serverUrls(): ServerUrls {
  let provided: ServerUrls | undefined;
  try {
    provided = inject("servers");
  } catch {
    provided = undefined;
  }
  return (
    provided ?? {
      NATS_URL: testEnv.NATS_URL ?? LOCAL_DEFAULTS.NATS_URL,
      DATABASE_URL: testEnv.DATABASE_URL ?? LOCAL_DEFAULTS.DATABASE_URL,
      REDIS_URL: testEnv.REDIS_URL ?? LOCAL_DEFAULTS.REDIS_URL,
    }
  );
}
