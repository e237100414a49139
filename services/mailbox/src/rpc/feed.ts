import type { RpcServer } from "@mam/bus/rpc.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import type { MailboxContext } from "../context.ts";
import { feedMessages } from "../read/feed-messages.ts";

/**
 * Realtime's question for every message event it renders: the messages of one workspace as
 * the feed shows them. No scope token: it is asked by realtime for events of any tenant, and
 * the NATS permissions let only realtime (and the gateway) publish on svc.mailbox.
 * The workspace is named by the caller and every query is bounded by it.
 */
export function registerFeedRpc(server: RpcServer, ctx: MailboxContext): void {
  server.servePublic(RpcContracts.mailbox.feedMessages, async (req) => ({
    status: 200,
    body: { messages: await feedMessages(ctx.db, req.workspaceId, req.messageIds) },
  }));
}
