import { z } from "zod";

/** Defaults that work against the servers of a developer machine (see README). */
export const LOCAL_DEFAULTS = {
  NATS_URL: "nats://127.0.0.1:4222",
  DATABASE_URL: "postgres://postgres@127.0.0.1:5432/postgres",
  REDIS_URL: "redis://127.0.0.1:6379",
} as const;

const port = z.coerce.number().int().min(0).max(65535);

/** Settings every service shares. Each service extends this in its own config.ts. */
export const BaseEnv = z.object({
  NODE_ENV: z.string().default("development"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  NATS_URL: z.string().default(LOCAL_DEFAULTS.NATS_URL),
  /** Prefix for every NATS subject and stream; lets several deployments or tests share a server. */
  NATS_PREFIX: z
    .string()
    .regex(/^([A-Za-z0-9_-]+\.)?$/, "must be empty or one token followed by a dot")
    .default(""),
  /** This service's NATS user on a locked-down server (infra/nats/nats.conf); unset: anonymous, or the user in NATS_URL. */
  NATS_USER: z.string().optional(),
  NATS_PASSWORD: z.string().optional(),
  /** Without NATS_PASSWORD: a file holding it (read once at start, trimmed), e.g. /secrets/nats/password in compose. */
  NATS_PASSWORD_FILE: z.string().optional(),
  /**
   * Copies of every stream and bucket the platform creates (3 on a JetStream cluster: a
   * PubAck then means stored on a majority, which survives a power loss of one server).
   * Existing streams and buckets with fewer copies are raised to it at start (never
   * lowered); above 1 needs a cluster.
   */
  NATS_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  /** The gateway's public key (PEM, or PEM in base64) that scope tokens are verified with. */
  SCOPE_PUBLIC_KEY: z.string().optional(),
  /** Without SCOPE_PUBLIC_KEY: the file the gateway writes the public key to when it creates the pair. */
  SCOPE_PUBLIC_KEY_FILE: z.string().default(".data/scope-key.pub.pem"),
  /** How long a service started before the gateway waits for that file, then fails. */
  SCOPE_PUBLIC_KEY_WAIT_S: z.coerce.number().int().min(0).max(3600).default(60),
  /** Only the gateway signs (ScopeSigningEnv): a private key anywhere else is refused. */
  SCOPE_PRIVATE_KEY: z
    .undefined({ error: "only the gateway holds the scope private key; remove it from this service's environment (it verifies with SCOPE_PUBLIC_KEY)" })
    .optional(),
  /**
   * Statement texts each PostgreSQL connection sends as named (prepared) statements, parsed
   * and planned once per connection instead of each time; 0 sends none, for a pooler that
   * moves sessions between clients (PgBouncer in transaction mode before 1.21).
   */
  DB_PREPARED_STATEMENTS: z.coerce.number().int().min(0).max(10_000).default(200),
  HEALTH_PORT: port.optional(),
  /** Where health endpoints listen; 0.0.0.0 in containers so probes can reach them. */
  HEALTH_HOST: z.string().default("127.0.0.1"),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
});

/** The gateway's signing key, on top of BaseEnv: no other service reads these. */
export const ScopeSigningEnv = z.object({
  /** Ed25519 private key (PEM, or PEM in base64); when unset, read from SCOPE_KEY_FILE. */
  SCOPE_PRIVATE_KEY: z.string().optional(),
  /** The private key file, created once with mode 0600 when absent; the public key goes to SCOPE_PUBLIC_KEY_FILE. */
  SCOPE_KEY_FILE: z.string().default(".data/scope-key.pem"),
});

export const PortSchema = port;

/** Parses the environment once; a bad setting stops the process with a message naming it. */
export function parseEnv<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv): z.infer<T> {
  // `NAME=` means unset, as in shells and compose files.
  const given = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ""));
  const r = schema.safeParse(given);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  throw new ConfigError(`invalid configuration: ${lines.join("; ")}`);
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

export type BaseConfig = z.infer<typeof BaseEnv>;
