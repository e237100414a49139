/**
 * Subjects of the services' operator requests, as packages/service-kit/src/operator-rpc.ts
 * builds them (`svc.<service>.ops.<...>`): the CLI does not depend on the service kit.
 */
export const operatorSubject = (service: string, ...parts: string[]) => `svc.${service}.ops.${parts.join(".")}`;

/** Identity's list of tenants (services/identity/src/rpc/operator.ts). */
export const TENANT_LIST = operatorSubject("identity", "tenant", "list");

/** A projection's rebuild requests, served by the replica holding its lease (packages/service-kit/src/rebuild.ts). */
export const rebuildSubject = (service: string, projection: string) => operatorSubject(service, "rebuild", projection);

/** The read models an operator may rebuild (`mam rebuild <name>`): the service that keeps each, and its projection (durable consumer) name. */
export const READ_MODELS: Record<string, { service: string; projection: string }> = {
  mailbox: { service: "mailbox", projection: "mailbox-read-model" },
  billing: { service: "billing", projection: "billing-read-model" },
};

/** What a rebuild request answers: where the replay is. */
export interface RebuildProgress {
  projection: string;
  rebuilding: boolean;
  startedAt: string | null;
  targetSeq: number;
  appliedSeq: number;
  pending: number;
  ackPending: number;
  redelivered: number;
}
