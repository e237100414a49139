import { pino, type DestinationStream, type Logger } from "pino";

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

export function createLogger(service: string, level = "info", destination?: DestinationStream): Logger {
  return pino(
    {
      name: service,
      level,
      base: { service },
      redact: { paths: REDACT, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
