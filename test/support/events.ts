import { randomUUID } from "node:crypto";
import type { EventEnvelope } from "@mam/contracts/envelope.ts";
import type { MailboxEnvelope, MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import { MAILBOX_CONTEXT } from "@mam/contracts/mailbox-events.ts";
import { uuidv7 } from "@mam/runtime/ids.ts";

interface Placed {
  tenantId: string | null;
  workspaceId: string | null;
  aggregateId?: string;
  /** 1 unless said. */
  aggregateVersion?: number;
  /** Now unless said. */
  occurredAt?: string;
}

/** An event as a service's relay publishes it (a fresh id, by the system): what a test puts on the stream or applies itself. */
export function envelopeOf<D>(e: Placed & { type: string; context: string; data: D }): EventEnvelope<D> {
  return {
    id: uuidv7(),
    type: e.type,
    schemaVersion: 1,
    context: e.context,
    tenantId: e.tenantId,
    workspaceId: e.workspaceId,
    aggregateId: e.aggregateId ?? randomUUID(),
    aggregateVersion: e.aggregateVersion ?? 1,
    occurredAt: e.occurredAt ?? new Date().toISOString(),
    causationId: null,
    correlationId: null,
    actor: { type: "system", id: null },
    data: e.data,
  };
}

/** A mailbox event in its envelope (see envelopeOf). */
export const mailboxEnvelope = (at: Placed, event: MailboxEvent): MailboxEnvelope =>
  ({ ...envelopeOf({ ...at, context: MAILBOX_CONTEXT, type: event.type, data: event.data }), schemaVersion: event.schemaVersion }) as MailboxEnvelope;
