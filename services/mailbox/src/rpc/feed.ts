import type { RpcServer } from "@mam/bus/rpc.ts";
import { AppError } from "@mam/contracts/errors.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import type { MailboxContext } from "../context.ts";
import { readModelRebuilding } from "../read/rebuilding.ts";
import { feedMessages } from "../read/feed-messages.ts";

/**
 * Realtime's question for every message event it renders: the messages of one workspace as
 * the feed shows them. No scope token: it is asked by realtime for events of any tenant, and
 * the NATS permissions let only realtime (and the gateway) publish on svc.mailbox.
 * The tenant and workspace are named by the caller (the event's) and the query is bounded by
 * both: the entry goes under that tenant's subject, so nothing of another tenant is shown.
 *
 * While the read model is rebuilt it answers UNAVAILABLE: a message not replayed yet would
 * be left out and its entry rendered without it for good; realtime tries the batch again later.
 */
export function registerFeedRpc(server: RpcServer, ctx: MailboxContext): void {
  server.servePublic(RpcContracts.mailbox.feedMessages, async (req) => {
    const { found, rebuilding } = await feedMessages(ctx.db, { tenantId: req.tenantId, workspaceId: req.workspaceId }, req.messageIds);
    // Told by the read's own rows; with none, asked after the read: no record then means the read saw the whole read model.
    if (rebuilding ?? (await readModelRebuilding(ctx))) throw new AppError("UNAVAILABLE", "The mailbox's read model is being rebuilt; retry shortly");
    return { status: 200, body: { messages: found } };
  });
}
