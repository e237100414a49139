import { ZodError } from "zod";
import { DurableConsumer } from "@mam/bus/consumer.ts";
import { eventSubject } from "@mam/contracts/envelope.ts";
import { IDENTITY_CONTEXT, parseIdentityEvent, type IdentityEventType } from "@mam/contracts/identity-events.ts";
import type { Actor } from "@mam/contracts/envelope.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import type { Backbone } from "./backbone.ts";

const WORKSPACE_DELETED: IdentityEventType = "WorkspaceDeleted";

/** What a service does when identity deletes a workspace: what it ended (a count), 0 when nothing was left. */
export type EndWorkspace = (workspace: { tenantId: string; workspaceId: string }, meta: { actor: Actor; requestId: string }) => Promise<number>;

/**
 * A service's durable consumer of identity's WorkspaceDeleted events (shared by its
 * replicas). A message is acknowledged only once `end` resolved, so a crash halfway means a
 * redelivery, which `end` must make harmless (find nothing left).
 */
export function workspaceEndsConsumer<DB>(o: { backbone: Backbone<DB>; logger: Logger; durable: string; what: string; end: EndWorkspace }): DurableConsumer {
  o.backbone.watchConsumerLag(o.backbone.stream, o.durable);
  return new DurableConsumer({
    bus: o.backbone.bus,
    stream: o.backbone.stream,
    durable: o.durable,
    // One filter subject (nats-server 2.9): every tenant's and workspace's WorkspaceDeleted.
    filterSubject: eventSubject(o.backbone.bus.prefix, { context: IDENTITY_CONTEXT, tenantId: "*", workspaceId: "*", type: WORKSPACE_DELETED }),
    logger: o.logger,
    isPoison: (err) => err instanceof ZodError,
    handle: async (msg) => {
      const e = parseIdentityEvent(msg.json());
      if (e.type !== "WorkspaceDeleted") return;
      const ended = await o.end(
        { tenantId: e.data.tenantId, workspaceId: e.data.workspaceId },
        { actor: { type: "system", id: null }, requestId: e.correlationId ?? e.id },
      );
      if (ended) o.logger.info({ workspaceId: e.data.workspaceId, ended }, o.what);
    },
  });
}
