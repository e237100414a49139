import { sql, type Selectable } from "kysely";
import { CoalescedReads } from "@mam/service-kit/coalesced-reads.ts";
import { rebuildingIn } from "@mam/service-kit/rebuild-guard.ts";
import type { MailboxContext } from "../context.ts";
import type { AddressClaimsTable } from "../db/schema.ts";
import { PROJECTION } from "../projections/mailbox-read-model.ts";

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

/**
 * A read, and whether the read model was being rebuilt in the snapshot it was made in: true,
 * and what was read may lack what is not replayed yet (an outcome, a claim); false, and it was
 * read from the whole model.
 */
export interface Checked<T> {
  value: T;
  rebuilding: boolean;
}

/** As Postgres prints uuids (lower case), so a row is found by the key it was asked for. */
const idOf = (k: SentKey) => `${k.workspaceId} ${k.messageId}`.toLowerCase();

/**
 * The delivery worker's reads, each made for every message being delivered at the time with
 * one statement (see CoalescedReads), each telling in the same statement whether the read
 * model was being rebuilt: the worker handles up to 32 sent messages at once, and each used
 * to read on its own, five statements before the first copy was filed.
 */
export class DeliveryReads {
  private readonly sent: CoalescedReads<SentKey, Checked<SentState | null>>;
  private readonly claims: CoalescedReads<string, Checked<Claim | null>>;

  constructor(ctx: MailboxContext) {
    this.sent = new CoalescedReads({
      idOf,
      read: async (keys) => {
        const { rows } = await sql<{
          workspace_id: string;
          message_id: string;
          status: string | null;
          queued: boolean;
          settled: string[];
          rebuilding: boolean;
        }>`
          select k.workspace_id, k.message_id, m.status,
            exists (select 1 from delivery_queue q where q.workspace_id = k.workspace_id and q.message_id = k.message_id) as queued,
            array(select o.recipient from delivery_outcomes o where o.workspace_id = k.workspace_id and o.message_id = k.message_id) as settled,
            r.rebuilding
          from (select ${rebuildingIn(PROJECTION)} as rebuilding) as r
          cross join unnest(${keys.map((k) => k.workspaceId)}::uuid[], ${keys.map((k) => k.messageId)}::uuid[]) as k(workspace_id, message_id)
          left join messages m on m.workspace_id = k.workspace_id and m.message_id = k.message_id`.execute(ctx.db);
        const out = new Map<string, Checked<SentState | null>>();
        for (const r of rows)
          out.set(idOf({ workspaceId: r.workspace_id, messageId: r.message_id }), {
            value: r.status === null ? null : { status: r.status, queued: r.queued, settled: r.settled },
            rebuilding: r.rebuilding,
          });
        return out;
      },
    });
    this.claims = new CoalescedReads({
      idOf: (a) => a,
      read: async (addresses) => {
        const { rows } = await sql<Claim & { asked: string; rebuilding: boolean }>`
          select a.asked, c.*, r.rebuilding
          from (select ${rebuildingIn(PROJECTION)} as rebuilding) as r
          cross join unnest(${addresses}::text[]) as a(asked)
          left join address_claims c on c.address = a.asked`.execute(ctx.db);
        const out = new Map<string, Checked<Claim | null>>();
        for (const { asked, rebuilding, ...claim } of rows) out.set(asked, { value: claim.address === null ? null : claim, rebuilding });
        return out;
      },
    });
  }

  /** The sent message's state; null while the command that sent it has not committed. */
  sentState(key: SentKey): Promise<Checked<SentState | null>> {
    return this.sent.get(key);
  }

  /** The claims of these addresses (those of this platform's inboxes); rebuilding if any of their reads saw a rebuild. */
  async claimsOf(addresses: string[]): Promise<Checked<Claim[]>> {
    const read = await Promise.all(addresses.map((a) => this.claims.get(a)));
    return { value: read.flatMap((c) => (c.value ? [c.value] : [])), rebuilding: read.some((c) => c.rebuilding) };
  }
}
