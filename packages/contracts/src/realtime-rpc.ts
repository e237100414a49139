import { z } from "zod";
import { Deleted, NoParams } from "./results.ts";
import { contract } from "./rpc-contract.ts";
import {
  CreatedWebhook,
  CreateWebhookBody,
  DeliveryPage,
  ListDeliveriesQuery,
  ListWebhooksRequest,
  UpdateWebhookBody,
  Webhook,
  WebhookList,
  WebhookRef,
  WsRoute,
} from "./webhooks-api.ts";

/** The realtime service's request subjects, `svc.realtime.<resource>.<verb>`. */
export const RealtimeRpc = {
  webhookCreate: contract("svc.realtime.webhook.create", z.object({ body: CreateWebhookBody }), CreatedWebhook),
  webhookList: contract("svc.realtime.webhook.list", ListWebhooksRequest, WebhookList),
  webhookGet: contract("svc.realtime.webhook.get", WebhookRef, Webhook),
  webhookUpdate: contract("svc.realtime.webhook.update", WebhookRef.extend({ body: UpdateWebhookBody }), Webhook),
  webhookDelete: contract("svc.realtime.webhook.delete", WebhookRef, Deleted),
  webhookDeliveries: contract("svc.realtime.webhook.deliveries", ListDeliveriesQuery.extend({ webhookId: z.string() }), DeliveryPage, "query"),
  /** Internal, unscoped (only the gateway may ask): one replica, chosen by the queue group, names its WebSocket port. */
  wsRoute: contract("svc.realtime.ws.route", NoParams, WsRoute),
};
