import type { RpcContext, RpcServer } from "@mam/bus/rpc.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import type { RealtimeContext } from "../context.ts";
import { createWebhook, deleteWebhook, updateWebhook } from "./commands.ts";
import type { CommandMeta } from "./execute.ts";
import { getWebhook, listDeliveries, listWebhooks } from "./read.ts";

const meta = (c: RpcContext): CommandMeta => ({ actor: { type: "key", id: c.claims.kid }, requestId: c.requestId });
const ok = <T>(body: T) => ({ status: 200, body });
const created = <T>(body: T) => ({ status: 201, body });

/** The webhook API's commands and queries, one contract each: requests arrive parsed, the scope comes from the token. */
export function registerWebhookRpc(server: RpcServer, ctx: RealtimeContext): void {
  const R = RpcContracts.realtime;
  server.serve(R.webhookCreate, async (req, c) => created(await createWebhook(ctx, c.claims, req.body, meta(c))));
  server.serve(R.webhookList, async (req, c) => ok(await listWebhooks(ctx, c.claims, req.query)));
  server.serve(R.webhookGet, async (req, c) => ok(await getWebhook(ctx, c.claims, req.webhookId)));
  server.serve(R.webhookUpdate, async (req, c) => ok(await updateWebhook(ctx, c.claims, req, meta(c))));
  server.serve(R.webhookDelete, async (req, c) => ok(await deleteWebhook(ctx, c.claims, req.webhookId, meta(c))));
  server.serve(R.webhookDeliveries, async (req, c) => ok(await listDeliveries(ctx, c.claims, req)));
}
