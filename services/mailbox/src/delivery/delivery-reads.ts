import { sql, type Selectable } from "kysely";
import { CoalescedReads } from "@mam/service-kit/coalesced-reads.ts";
import type { MailboxContext } from "../context.ts";
import type { AddressClaimsTable } from "../db/schema.ts";

export interface SentKey {
  workspaceId: string;
  messageId: string;
}

/** What the delivery of a sent message starts from: its status, whether the retry queue holds it, the recipients with an outcome. */
export interface SentState {
  status: string;
  queued: boolean;
  settled: string[];
}

export type Claim = Selectable<AddressClaimsTable>;

/** As Postgres prints uuids (lower case), so a row is found by the key it was asked for. */
const idOf = (k: SentKey) => `${k.workspaceId} ${k.messageId}`.toLowerCase();

/**
 * The delivery worker's reads, each made for every message being delivered at the time with
 * one statement (see CoalescedReads; the rebuild check is readModelRebuilding's): the worker
 * handles up to 32 sent messages at once, and each used to read on its own, five statements
 * before the first copy was filed.
 */
export class DeliveryReads {
  private readonly sent: CoalescedReads<SentKey, SentState | null>;
  private readonly claims: CoalescedReads<string, Claim | null>;

  constructor(ctx: MailboxContext) {
    this.sent = new CoalescedReads({
      idOf,
      read: async (keys) => {
        const { rows } = await sql<{ workspace_id: string; message_id: string; status: string; queued: boolean; settled: string[] }>`
          select m.workspace_id, m.message_id, m.status,
            exists (select 1 from delivery_queue q where q.workspace_id = m.workspace_id and q.message_id = m.message_id) as queued,
            array(select o.recipient from delivery_outcomes o where o.workspace_id = m.workspace_id and o.message_id = m.message_id) as settled
          from unnest(${keys.map((k) => k.workspaceId)}::uuid[], ${keys.map((k) => k.messageId)}::uuid[]) as k(workspace_id, message_id)
          join messages m on m.workspace_id = k.workspace_id and m.message_id = k.message_id`.execute(ctx.db);
        const out = new Map<string, SentState | null>(keys.map((k) => [idOf(k), null]));
        for (const r of rows)
          out.set(idOf({ workspaceId: r.workspace_id, messageId: r.message_id }), { status: r.status, queued: r.queued, settled: r.settled });
        return out;
      },
    });
    this.claims = new CoalescedReads({
      idOf: (a) => a,
      read: async (addresses) => {
        const rows = await ctx.db.selectFrom("address_claims").selectAll().where("address", "in", addresses).execute();
        const out = new Map<string, Claim | null>(addresses.map((a) => [a, null]));
        for (const r of rows) out.set(r.address, r);
        return out;
      },
    });
  }

  /** The sent message's state; null while the command that sent it has not committed. */
  sentState(key: SentKey): Promise<SentState | null> {
    return this.sent.get(key);
  }

  /** The claims of these addresses (those of this platform's inboxes). */
  async claimsOf(addresses: string[]): Promise<Claim[]> {
    return (await Promise.all(addresses.map((a) => this.claims.get(a)))).filter((c): c is Claim => c !== null);
  }
}
