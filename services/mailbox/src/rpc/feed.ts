import type { RpcServer } from "@mam/bus/rpc.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import type { MailboxContext } from "../context.ts";
import { feedMessages } from "../read/feed-messages.ts";

/**
 * Realtime's question for every message event it renders: the messages of one workspace as
 * the feed shows them. No scope token: it is asked by realtime for events of any tenant, and
 * the NATS permissions let only realtime (and the gateway) publish on svc.mailbox.
 * The tenant and workspace are named by the caller (the event's) and the query is bounded by
 * both: the entry goes under that tenant's subject, so nothing of another tenant is shown.
 */
export function registerFeedRpc(server: RpcServer, ctx: MailboxContext): void {
  server.servePublic(RpcContracts.mailbox.feedMessages, async (req) => ({
    status: 200,
    body: { messages: await feedMessages(ctx.db, { tenantId: req.tenantId, workspaceId: req.workspaceId }, req.messageIds) },
  }));
}
