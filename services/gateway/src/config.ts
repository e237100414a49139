import { isIP } from "node:net";
import { z } from "zod";
import { BaseEnv, LOCAL_DEFAULTS, parseEnv, PortSchema, ScopeSigningEnv } from "@mam/runtime/config.ts";
import { McpEnv } from "./mcp-door.ts";

const PROXY_NAMES = new Set(["loopback", "linklocal", "uniquelocal"]);

/** An address, or a subnet as address/prefix-length or address/netmask. */
function isProxyAddress(x: string): boolean {
  const [addr = "", range, ...rest] = x.split("/");
  if (rest.length || !isIP(addr)) return false;
  return range === undefined || /^\d{1,3}$/.test(range) || isIP(range) === 4;
}

export const Env = BaseEnv.extend({
  // The gateway alone signs scope tokens: the private key settings are its own.
  ...ScopeSigningEnv.shape,
  // The MCP door's sessions (mcp-door.ts).
  ...McpEnv.shape,
  PORT: PortSchema.default(8080),
  HOST: z.string().default("0.0.0.0"),
  REDIS_URL: z.string().default(LOCAL_DEFAULTS.REDIS_URL),
  /** Requests each key may make per window; over it: 429 with Retry-After. */
  RATE_LIMIT_MAX: z.coerce.number().int().positive().default(600),
  RATE_LIMIT_WINDOW_S: z.coerce.number().int().positive().default(60),
  /**
   * Requests all the keys of one tenant may make together per window, so that minting more
   * keys does not multiply a tenant's rate. Unset: four times RATE_LIMIT_MAX. The operator's
   * `sa_` keys belong to no tenant and have only their own limit.
   */
  TENANT_RATE_LIMIT_MAX: z.coerce.number().int().positive().optional(),
  /**
   * Keys that identity did not know, per client address and window. Past it, that address
   * gets 429 for any key this gateway has not seen resolve, before identity is asked.
   */
  UNAUTHENTICATED_RATE_LIMIT_MAX: z.coerce.number().int().positive().default(60),
  /**
   * Which proxies in front of the gateway to believe about the client address
   * (X-Forwarded-For): a hop count, or a comma-separated list of addresses, subnets or the
   * names loopback / linklocal / uniquelocal (as express's `trust proxy`). Unset: none, the
   * address is the peer of the TCP connection. "true" (trust any) is refused: any client
   * could then choose its own address and escape the per-address limit.
   */
  TRUST_PROXY: z
    .string()
    .optional()
    .transform((v, c): number | string[] | false => {
      const given = v?.trim();
      if (!given || given === "false") return false;
      if (/^\d+$/.test(given)) return Number(given);
      if (given === "true") {
        c.addIssue({ code: "custom", message: "must be a hop count or a list of proxy addresses, not true (any client could pick its own address)" });
        return z.NEVER;
      }
      const list = given
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean);
      const wrong = list.filter((x) => !PROXY_NAMES.has(x) && !isProxyAddress(x));
      if (wrong.length) {
        c.addIssue({ code: "custom", message: `not an address, subnet or loopback / linklocal / uniquelocal: ${wrong.join(", ")}` });
        return z.NEVER;
      }
      return list;
    }),
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
  /** Request bodies over 1 MiB in flight at once, in all, per tenant and per key; beyond: 429 with Retry-After. */
  LARGE_BODIES_IN_FLIGHT: z.coerce.number().int().positive().default(8),
  LARGE_BODIES_PER_KEY: z.coerce.number().int().positive().default(2),
  /** Unset: half of LARGE_BODIES_IN_FLIGHT (at least 1), so that one tenant's keys together cannot hold every slot. */
  LARGE_BODIES_PER_TENANT: z.coerce.number().int().positive().optional(),
  /** How long a resolved key is trusted without asking identity again. Revocations evict at once. */
  KEY_CACHE_TTL_S: z.coerce.number().int().positive().default(30),
  SCOPE_TOKEN_TTL_S: z.coerce.number().int().positive().max(60).default(30),
  /** Longer than a service's worst-case command (its transaction, then up to 2 s waiting for the relay), so a slow command is not reported as failed while it succeeds. */
  RPC_TIMEOUT_MS: z.coerce.number().int().positive().default(15_000),
}).transform((e, c) => {
  const perTenant = e.LARGE_BODIES_PER_TENANT ?? Math.max(1, Math.floor(e.LARGE_BODIES_IN_FLIGHT / 2));
  if (perTenant > e.LARGE_BODIES_IN_FLIGHT) {
    c.addIssue({ code: "custom", path: ["LARGE_BODIES_PER_TENANT"], message: "must be at most LARGE_BODIES_IN_FLIGHT" });
  }
  return { ...e, TENANT_RATE_LIMIT_MAX: e.TENANT_RATE_LIMIT_MAX ?? 4 * e.RATE_LIMIT_MAX, LARGE_BODIES_PER_TENANT: perTenant };
});
export type GatewayConfig = z.infer<typeof Env>;

export const loadConfig = (env: NodeJS.ProcessEnv = process.env): GatewayConfig => parseEnv(Env, env);
