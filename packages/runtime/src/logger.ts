import { pino, type DestinationStream, type Logger } from "pino";
import { currentLogContext } from "./log-context.ts";

export type { Logger };

/** Anything that may carry a secret is censored wherever it appears in a log line. */
const REDACT = [
  "key",
  "apiKey",
  "secret",
  "password",
  "token",
  "keyHash",
  "authorization",
  "*.key",
  "*.apiKey",
  "*.secret",
  "*.password",
  "*.token",
  "*.keyHash",
  "*.authorization",
  'headers["x-api-key"]',
  'req.headers["x-api-key"]',
  "req.headers.authorization",
  'headers["mam-scope"]',
];

/** The mixin's answer outside any log context: the line is written as it is. */
const NO_CONTEXT = Object.freeze({});

/**
 * Each line carries the ids of the work it was written for (see log-context.ts). The mixin
 * hands over the context itself; the merge makes the line's one object (none outside a
 * context), so the context is never written to (pino's default merge would write the line's
 * fields into it). A field the line names itself wins over the context's.
 */
const mixin = (): object => currentLogContext() ?? NO_CONTEXT;
const mixinMergeStrategy = (line: object, context: object): object => (context === NO_CONTEXT ? line : Object.assign({}, context, line));

export function createLogger(service: string, level = "info", destination?: DestinationStream): Logger {
  return pino(
    {
      name: service,
      level,
      base: { service },
      redact: { paths: REDACT, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin,
      mixinMergeStrategy,
    },
    destination,
  );
}
