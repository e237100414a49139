import { operatorSubject } from "@mam/contracts/operator.ts";

// The subjects and answers the services define (@mam/contracts/operator.ts), for the commands.
export { operatorSubject, rebuildSubject, type RebuildProgress } from "@mam/contracts/operator.ts";

/** Identity's list of tenants (services/identity/src/rpc/operator.ts). */
export const TENANT_LIST = operatorSubject("identity", "tenant", "list");

/** The read models an operator may rebuild (`mam rebuild <name>`): the service that keeps each, and its projection (durable consumer) name. */
export const READ_MODELS: Record<string, { service: string; projection: string }> = {
  mailbox: { service: "mailbox", projection: "mailbox-read-model" },
  billing: { service: "billing", projection: "billing-read-model" },
};
