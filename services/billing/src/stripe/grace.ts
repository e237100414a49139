import type { Part } from "@mam/service-kit/service.ts";
import type { BillingContext } from "../context.ts";
import { checkGrace, graceMsOf } from "./commands.ts";

/** Tenants checked per round. */
const PAGE = 500;

/**
 * Pauses every tenant whose payment failed longer ago than BILLING_GRACE_DAYS, every
 * BILLING_GRACE_CHECK_S seconds (and `GET /v1/billing` checks its tenant on read). Each
 * pause is a command under the tenant's lock, so replicas checking at once pause it once.
 */
export class GracePart implements Part {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(private readonly ctx: BillingContext) {}

  start(): Promise<void> {
    const tick = () => {
      this.running ??= this.round()
        .catch((err: unknown) => this.ctx.logger.warn({ err: (err as Error).message }, "grace check failed; next round retries"))
        .finally(() => (this.running = undefined));
    };
    tick();
    this.timer = setInterval(tick, this.ctx.cfg.BILLING_GRACE_CHECK_S * 1000);
    this.timer.unref();
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  async round(): Promise<void> {
    const { ctx } = this;
    const due = new Date(ctx.clock().getTime() - graceMsOf(ctx));
    const rows = await ctx.db
      .selectFrom("tenant_billing")
      .select("tenant_id")
      .where("status", "=", "past_due")
      .where("past_due_since", "<=", due)
      .limit(PAGE)
      .execute();
    for (const r of rows) {
      if (await checkGrace(ctx, r.tenant_id, { actor: { type: "system", id: null }, requestId: ctx.newId() })) {
        ctx.logger.info({ tenantId: r.tenant_id }, "grace period after a failed payment over: tenant paused");
      }
    }
  }
}
