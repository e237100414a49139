import type { DurableConsumer } from "@mam/bus/consumer.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import { workspaceEndsConsumer as followWorkspaceEnds } from "@mam/service-kit/workspace-ends.ts";
import type { RealtimeContext } from "../context.ts";
import type { RealtimeDb } from "../db/schema.ts";
import { endWorkspace } from "./commands.ts";

/** The durable consumer of identity's WorkspaceDeleted events (shared by realtime's replicas). */
export const WORKSPACE_ENDS_DURABLE = "realtime-workspace-ends";

/** Follows identity's WorkspaceDeleted events: the workspace's webhooks are deleted with it. */
export const workspaceEndsConsumer = (ctx: RealtimeContext, backbone: Backbone<RealtimeDb>): DurableConsumer =>
  followWorkspaceEnds({
    backbone,
    logger: ctx.logger,
    durable: WORKSPACE_ENDS_DURABLE,
    what: "workspace's webhooks deleted",
    end: (w, meta) => endWorkspace(ctx, w, meta),
  });
