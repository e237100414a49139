import { BillingRpc } from "./billing-rpc.ts";
import { IdentityRpc } from "./identity-rpc.ts";
import { MailboxRpc } from "./mailbox-rpc.ts";
import { RealtimeRpc } from "./realtime-rpc.ts";

/**
 * Every request subject with its request and reply schemas, by service: the registry the
 * subject names (`Rpc`), the gateway's routes, the handlers and the API document come from.
 */
export const RpcContracts = { identity: IdentityRpc, mailbox: MailboxRpc, realtime: RealtimeRpc, billing: BillingRpc } as const;
