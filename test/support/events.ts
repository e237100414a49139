import { randomUUID } from "node:crypto";
import type { EventEnvelope } from "@mam/contracts/envelope.ts";
import { uuidv7 } from "@mam/runtime/ids.ts";

/** An event as a service's relay publishes it (a fresh id, version 1, now, by the system): what a test puts on the stream itself. */
export function envelopeOf<D>(e: {
  type: string;
  context: string;
  tenantId: string | null;
  workspaceId: string | null;
  data: D;
  aggregateId?: string;
}): EventEnvelope<D> {
  return {
    id: uuidv7(),
    type: e.type,
    schemaVersion: 1,
    context: e.context,
    tenantId: e.tenantId,
    workspaceId: e.workspaceId,
    aggregateId: e.aggregateId ?? randomUUID(),
    aggregateVersion: 1,
    occurredAt: new Date().toISOString(),
    causationId: null,
    correlationId: null,
    actor: { type: "system", id: null },
    data: e.data,
  };
}
