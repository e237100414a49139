import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { EventDraft } from "./execute.ts";

/** Whose an event is: every mailbox event belongs to one tenant's workspace. */
export interface Owner {
  tenantId: string;
  workspaceId: string;
}

/**
 * An event in its draft. `eventId` is given when deciding the same thing again must make
 * the same event (a retried send or filing); the executor gives the others a fresh id.
 */
export function drafted(owner: Owner, aggregateId: string, aggregateVersion: number, event: MailboxEvent, eventId?: string): EventDraft {
  return { event, ...(eventId ? { eventId } : {}), tenantId: owner.tenantId, workspaceId: owner.workspaceId, aggregateId, aggregateVersion };
}
