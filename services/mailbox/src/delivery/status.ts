import { type Kysely, type RawBuilder, sql } from "kysely";
import type { MailboxDb } from "../db/schema.ts";

export type RecipientStatus = "pending" | "delivered" | "bounced" | "deferred";

export interface RecipientDelivery {
  recipient: string;
  status: RecipientStatus;
  /** Why it bounced, or what its last try met; null otherwise. */
  reason: string | null;
  /** When it was delivered or bounced; null while it waits. */
  at: string | null;
}

interface Outbound {
  id: string;
  direction: "inbound" | "outbound";
  status: "sent" | "delivered" | "bounced" | "received";
  toAddresses: string[];
  cc: string[];
  bcc: string[];
}

/** The records of one outgoing message that its deliveries are made of. */
export interface DeliveryRecords {
  /** delivery_outcomes' rows of the message. */
  outcomes: { recipient: string; outcome: "delivered" | "bounced"; at: string | Date; reason: string | null }[];
  /** delivery_queue.deferred of the message, while it waits for another try. */
  deferred: { recipients: string[]; reason: string }[];
}

/**
 * The records as two columns (`outcomes`, `deferred`) of a query over messages aliased `m`,
 * read by index beside each row where `wanted` holds; null for received mail and where there is none.
 */
export const deliveryColumns = (wanted: RawBuilder<boolean>) =>
  [
    sql<
      DeliveryRecords["outcomes"] | null
    >`case when m.direction = 'outbound' and ${wanted} then (select json_agg(json_build_object('recipient', o.recipient, 'outcome', o.outcome, 'at', o.at, 'reason', o.reason)) from delivery_outcomes o where o.workspace_id = m.workspace_id and o.message_id = m.message_id) end`.as(
      "outcomes",
    ),
    sql<
      DeliveryRecords["deferred"] | null
    >`case when m.direction = 'outbound' and ${wanted} then (select q.deferred from delivery_queue q where q.workspace_id = m.workspace_id and q.message_id = m.message_id) end`.as(
      "deferred",
    ),
  ] as const;

/**
 * An outgoing message's recipients, each with what became of it so far, and the message's
 * status with `deferred` while some recipient waits for another try (and none bounced), and
 * `sent`, not `delivered`, while some recipient has no outcome yet: from the recorded outcomes
 * and the retry queue.
 */
export function withDeliveryRecords<V extends Outbound>(
  v: V,
  records: DeliveryRecords,
): Omit<V, "status"> & { status: V["status"] | "deferred"; deliveries: RecipientDelivery[] } {
  if (v.direction !== "outbound") return { ...v, deliveries: [] };
  const done = new Map(records.outcomes.map((o) => [o.recipient, o]));
  const waiting = new Map<string, string>();
  for (const d of records.deferred) for (const r of d.recipients) waiting.set(r.toLowerCase(), d.reason);
  const recipients = [...new Set([...v.toAddresses, ...v.cc, ...v.bcc].map((r) => r.toLowerCase()))];
  const deliveries = recipients.map((recipient): RecipientDelivery => {
    const o = done.get(recipient);
    if (o) return { recipient, status: o.outcome, reason: o.reason ?? null, at: new Date(o.at).toISOString() };
    const reason = waiting.get(recipient);
    return reason !== undefined ? { recipient, status: "deferred", reason, at: null } : { recipient, status: "pending", reason: null, at: null };
  });
  const deferred = v.status !== "bounced" && deliveries.some((d) => d.status === "deferred");
  // The first recipient delivered makes the row "delivered"; while others have no outcome yet
  // (a copy filed at send time, the world's recipients still to go) the message is still "sent".
  const underway = v.status === "delivered" && deliveries.some((d) => d.status === "pending");
  return { ...v, status: deferred ? "deferred" : underway ? "sent" : v.status, deliveries };
}

/** withDeliveryRecords of views whose rows are at hand, their records read by two statements. */
export async function withDeliveries<V extends Outbound>(db: Kysely<MailboxDb>, workspaceId: string, views: V[]) {
  const ids = views.filter((v) => v.direction === "outbound").map((v) => v.id);
  const [outcomes, queued] = ids.length
    ? await Promise.all([
        db
          .selectFrom("delivery_outcomes")
          .select(["message_id", "recipient", "outcome", "at", "reason"])
          .where("workspace_id", "=", workspaceId)
          .where("message_id", "in", ids)
          .execute(),
        db.selectFrom("delivery_queue").select(["message_id", "deferred"]).where("workspace_id", "=", workspaceId).where("message_id", "in", ids).execute(),
      ])
    : [[], []];
  return views.map((v) =>
    withDeliveryRecords(v, {
      outcomes: outcomes.filter((o) => o.message_id === v.id),
      deferred: queued.find((q) => q.message_id === v.id)?.deferred ?? [],
    }),
  );
}
