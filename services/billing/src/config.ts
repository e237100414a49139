import { readFileSync } from "node:fs";
import { z } from "zod";
import { PlanLimits } from "@mam/contracts/billing-events.ts";
import { BaseEnv, ConfigError, LOCAL_DEFAULTS, parseEnv, PortSchema } from "@mam/runtime/config.ts";

/** One plan of `BILLING_PLANS`. */
export const Plan = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "a plan id is 1–64 of a-z, 0-9, _ and -"),
  name: z.string().min(1).max(100),
  stripePriceId: z.string().min(1).max(255).nullable().default(null),
  limits: PlanLimits,
});
export type Plan = z.infer<typeof Plan>;

const Plans = z
  .array(Plan)
  .min(1)
  .max(100)
  .refine((plans) => new Set(plans.map((p) => p.id)).size === plans.length, "plan ids must be unique");

/** Largest plans file read (the plans are a short list). */
const MAX_PLANS_BYTES = 256 * 1024;

/** `BILLING_PLANS`: the JSON array inline, or the path of a file holding it. */
const PlansSetting = z.string().transform((raw, ctx) => {
  let text = raw.trim();
  if (!text.startsWith("[")) {
    try {
      text = readFileSync(text, "utf8");
    } catch (err) {
      ctx.addIssue({ code: "custom", message: `not a JSON array, nor a readable file (${(err as NodeJS.ErrnoException).code ?? "unreadable"})` });
      return z.NEVER;
    }
  }
  if (text.length > MAX_PLANS_BYTES) {
    ctx.addIssue({ code: "custom", message: `longer than ${MAX_PLANS_BYTES} bytes` });
    return z.NEVER;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    ctx.addIssue({ code: "custom", message: "not valid JSON" });
    return z.NEVER;
  }
  const r = Plans.safeParse(json);
  if (!r.success) {
    for (const i of r.error.issues) ctx.addIssue({ code: "custom", message: `${i.path.join(".") || "(plans)"}: ${i.message}` });
    return z.NEVER;
  }
  return r.data;
});

export const Env = BaseEnv.extend({
  DATABASE_URL: z.string().default(LOCAL_DEFAULTS.DATABASE_URL),
  DB_SCHEMA: z.string().default("billing"),
  HEALTH_PORT: PortSchema.default(8084),
  /** Stripe's secret API key (sk_…). Unset: checkout and portal answer 404 "billing not configured". */
  STRIPE_SECRET_KEY: z.string().min(1).max(500).optional(),
  /** The signing secret (whsec_…) of the Stripe webhook endpoint. Unset: the webhook answers 503. */
  STRIPE_WEBHOOK_SECRET: z.string().min(1).max(500).optional(),
  /** Where the Stripe SDK sends requests (default: Stripe's own API); a local stand-in in tests. */
  STRIPE_API_BASE: z.url().optional(),
  /** Days a tenant whose payment failed keeps sending before it is paused (fractions allowed). */
  BILLING_GRACE_DAYS: z.coerce.number().min(0).max(365).default(7),
  /** How often (seconds) tenants past due are checked for the end of their grace period. */
  BILLING_GRACE_CHECK_S: z.coerce.number().int().min(1).max(86_400).default(60),
  /** Where Stripe sends the browser back after checkout (`?checkout=success|cancel` added) and from the portal. */
  BILLING_RETURN_URL: z.url().default("http://localhost:3000/billing"),
  /**
   * The plans, as a JSON array inline or a file path: `[{ "id", "name", "stripePriceId",
   * "limits": { "inboxes", "emailsPerMonth", "domains" } }]`, a limit null for unlimited.
   * Unset: no plans, and nothing is limited.
   */
  BILLING_PLANS: PlansSetting.optional(),
  /** The plan a new tenant is put on; must name one of BILLING_PLANS. */
  BILLING_DEFAULT_PLAN: z.string().max(64).default("free"),
});
export type BillingConfig = z.infer<typeof Env>;

export const loadConfig = (env: NodeJS.ProcessEnv = process.env): BillingConfig => {
  const cfg = parseEnv(Env, env);
  if (cfg.BILLING_PLANS && !cfg.BILLING_PLANS.some((p) => p.id === cfg.BILLING_DEFAULT_PLAN)) {
    throw new ConfigError(`invalid configuration: BILLING_DEFAULT_PLAN: "${cfg.BILLING_DEFAULT_PLAN}" is not a plan of BILLING_PLANS`);
  }
  return cfg;
};
