import { ZodError } from "zod";
import { DurableConsumer } from "@mam/bus/consumer.ts";
import { eventSubject } from "@mam/contracts/envelope.ts";
import { IDENTITY_CONTEXT, parseIdentityEvent } from "@mam/contracts/identity-events.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import type { Part } from "@mam/service-kit/service.ts";
import type { Plan } from "../config.ts";
import type { BillingContext } from "../context.ts";
import type { BillingDb } from "../db/schema.ts";
import { announceDefaultLimits, setPlan } from "./commands.ts";

/** The durable consumer of identity's TenantCreated (infra/nats/nats.conf grants its lines). */
export const TENANTS_CONSUMER = "billing-tenants";

const SYSTEM = { actor: { type: "system" as const, id: null } };
/** Tenants read per page when the plans are reconciled at start. */
const PAGE = 500;

/**
 * Plans, when BILLING_PLANS is set: every new tenant is put on the default plan (a durable
 * consumer of identity's TenantCreated, created only with plans configured, so configuring
 * them later replays the tenants the stream still holds), and at start every tenant whose
 * plan's limits differ from the configuration (the operator changed them) is told the new
 * ones; one on a plan that no longer exists is moved to the default plan. Without plans
 * nothing is started and no event is emitted.
 */
export class PlansPart implements Part {
  private consumer?: DurableConsumer;

  constructor(
    private readonly ctx: BillingContext,
    private readonly b: Backbone<BillingDb>,
    private readonly plans: Plan[],
    private readonly defaultPlan: Plan,
  ) {}

  async start(): Promise<void> {
    await this.reconcile();
    const { ctx, b } = this;
    b.watchConsumerLag(b.stream, TENANTS_CONSUMER);
    this.consumer = new DurableConsumer({
      bus: b.bus,
      stream: b.stream,
      durable: TENANTS_CONSUMER,
      filterSubject: eventSubject(b.bus.prefix, { context: IDENTITY_CONTEXT, tenantId: "*", workspaceId: "*", type: "TenantCreated" }),
      logger: ctx.logger,
      isPoison: (err) => err instanceof ZodError,
      handle: async (msg) => {
        const e = parseIdentityEvent(msg.json());
        if (e.type !== "TenantCreated") return;
        const plan = this.defaultPlan;
        const changed = await setPlan(ctx, { tenantId: e.data.tenantId, plan, onlyIfNone: true }, { ...SYSTEM, requestId: e.correlationId ?? e.id });
        if (changed) ctx.logger.info({ tenantId: e.data.tenantId, planId: plan.id }, "tenant put on the default plan");
      },
    });
    await this.consumer.start();
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
  }

  /** Tells each tenant whose plan's limits changed (or whose plan is gone) its limits now. */
  private async reconcile(): Promise<void> {
    const { ctx } = this;
    const byId = new Map(this.plans.map((p) => [p.id, p]));
    let after = "00000000-0000-0000-0000-000000000000";
    let changed = 0;
    for (;;) {
      const rows = await ctx.db
        .selectFrom("tenant_plans")
        .select(["tenant_id", "plan_id", "limits"])
        .where("tenant_id", ">", after)
        .orderBy("tenant_id")
        .limit(PAGE)
        .execute();
      for (const r of rows) {
        const plan = byId.get(r.plan_id) ?? this.defaultPlan;
        const l = r.limits;
        if (plan.id === r.plan_id && l.inboxes === plan.limits.inboxes && l.domains === plan.limits.domains && l.emailsPerMonth === plan.limits.emailsPerMonth)
          continue;
        if (await setPlan(ctx, { tenantId: r.tenant_id, plan, onlyIfNone: false }, { ...SYSTEM, requestId: ctx.newId() })) changed++;
      }
      if (rows.length < PAGE) break;
      after = rows.at(-1)!.tenant_id;
    }
    if (changed) ctx.logger.info({ tenants: changed }, "plan limits changed in the configuration: tenants told");
  }
}

/**
 * At start, announces the default plan's limits (DefaultLimitsSet) when they differ from the
 * last announced, so the mailbox limits a tenant billing has not reached yet; with no plans
 * configured, announces none (null), so a mailbox told limits before drops them.
 */
export class DefaultLimitsPart implements Part {
  constructor(
    private readonly ctx: BillingContext,
    private readonly defaultPlan: Plan | null,
  ) {}

  async start(): Promise<void> {
    const { ctx, defaultPlan } = this;
    const plan = defaultPlan && { id: defaultPlan.id, limits: defaultPlan.limits };
    if (await announceDefaultLimits(ctx, plan, { ...SYSTEM, requestId: ctx.newId() }))
      ctx.logger.info({ planId: plan?.id ?? null }, "default plan limits announced");
  }

  async stop(): Promise<void> {}
}
