import { RpcContracts } from "./rpc-contracts.ts";
import type { RpcContract } from "./rpc-contract.ts";

type SubjectsOf<T extends Record<string, RpcContract>> = { readonly [K in keyof T]: T[K]["subject"] };
const subjectsOf = <T extends Record<string, RpcContract>>(contracts: T) =>
  Object.fromEntries(Object.entries(contracts).map(([name, c]) => [name, c.subject])) as SubjectsOf<T>;

/** Request-reply subjects of every service, `svc.<service>.<resource>.<verb>`: the names in `RpcContracts`. */
export const Rpc = {
  identity: subjectsOf(RpcContracts.identity),
  mailbox: subjectsOf(RpcContracts.mailbox),
  realtime: subjectsOf(RpcContracts.realtime),
  billing: subjectsOf(RpcContracts.billing),
} as const;

export const rpcSubject = (prefix: string, subject: string) => `${prefix}${subject}`;

/** Name of the JetStream stream holding every domain event under a subject prefix. */
export function eventsStreamName(prefix: string): string {
  const tag = prefix.replace(/[^A-Za-z0-9]/g, "").toUpperCase();
  return tag ? `${tag}_EVENTS` : "EVENTS";
}

/** Object-store bucket where replies too large for one NATS message wait for their caller. */
export const rpcReplyBucketName = (prefix: string) => `${prefix.replace(/[^A-Za-z0-9]/g, "") || "mam"}-rpc-replies`;
