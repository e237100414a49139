import { feedStreamName } from "@mam/contracts/realtime-feed.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import type { Part } from "@mam/service-kit/service.ts";
import type { RealtimeContext } from "../context.ts";
import { Dispatcher } from "./dispatcher.ts";
import { WEBHOOKS_DURABLE, webhookIntake } from "./intake.ts";
import { WebhookSender } from "./sender.ts";
import { logSweeper } from "./sweep.ts";
import { workspaceEndsConsumer } from "./workspace-ends.ts";

/** Webhook delivery, in start order: attempts (and the poll for retries), the feed's intake, workspace ends, the log's sweep. */
export function webhookParts(ctx: RealtimeContext, b: Backbone<any>): Part[] {
  const sender = new WebhookSender({ timeoutMs: ctx.cfg.WEBHOOK_TIMEOUT_MS, allowPrivate: ctx.cfg.WEBHOOK_ALLOW_PRIVATE });
  const dispatcher = new Dispatcher(ctx, sender);
  b.watchConsumerLag(feedStreamName(b.bus.prefix), WEBHOOKS_DURABLE);
  return [dispatcher, webhookIntake(ctx, dispatcher), workspaceEndsConsumer(ctx, b), logSweeper(ctx)];
}
