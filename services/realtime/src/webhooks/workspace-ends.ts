import { ZodError } from "zod";
import { DurableConsumer } from "@mam/bus/consumer.ts";
import { eventSubject } from "@mam/contracts/envelope.ts";
import { IDENTITY_CONTEXT, parseIdentityEvent, type IdentityEventType } from "@mam/contracts/identity-events.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import type { RealtimeContext } from "../context.ts";
import { endWorkspace } from "./commands.ts";

/** The durable consumer of identity's WorkspaceDeleted events (shared by realtime's replicas). */
export const WORKSPACE_ENDS_DURABLE = "realtime-workspace-ends";
const WORKSPACE_DELETED: IdentityEventType = "WorkspaceDeleted";

/**
 * Follows identity's WorkspaceDeleted events: the workspace's webhooks are deleted with it. A
 * message is acknowledged once the command committed; a redelivery finds nothing left.
 */
export function workspaceEndsConsumer(ctx: RealtimeContext, backbone: Backbone<any>): DurableConsumer {
  return new DurableConsumer({
    bus: backbone.bus,
    stream: backbone.stream,
    durable: WORKSPACE_ENDS_DURABLE,
    // One filter subject (nats-server 2.9): every tenant's and workspace's WorkspaceDeleted.
    filterSubject: eventSubject(backbone.bus.prefix, { context: IDENTITY_CONTEXT, tenantId: "*", workspaceId: "*", type: WORKSPACE_DELETED }),
    logger: ctx.logger,
    isPoison: (err) => err instanceof ZodError,
    handle: async (msg) => {
      const e = parseIdentityEvent(msg.json());
      if (e.type !== "WorkspaceDeleted") return;
      const deleted = await endWorkspace(
        ctx,
        { tenantId: e.data.tenantId, workspaceId: e.data.workspaceId },
        { actor: { type: "system", id: null }, requestId: e.correlationId ?? e.id },
      );
      if (deleted) ctx.logger.info({ workspaceId: e.data.workspaceId, deleted }, "workspace's webhooks deleted");
    },
  });
}
