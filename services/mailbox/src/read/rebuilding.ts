import { CoalescedReads } from "@mam/service-kit/coalesced-reads.ts";
import { isRebuilding } from "@mam/service-kit/rebuild.ts";
import type { MailboxContext } from "../context.ts";
import { PROJECTION } from "../projections/mailbox-read-model.ts";

const readers = new WeakMap<MailboxContext, CoalescedReads<string, boolean>>();

/**
 * Whether the mailbox's read model is being rebuilt (its record is there), read by a
 * statement begun after the call, so a caller may check it after its own reads. The checks
 * made at the same moment (deliveries, the feed's and the directory's reads, the retry queue)
 * share one statement (see CoalescedReads).
 */
export function readModelRebuilding(ctx: MailboxContext): Promise<boolean> {
  let r = readers.get(ctx);
  if (!r) {
    r = new CoalescedReads({ idOf: (p) => p, read: async () => new Map([[PROJECTION, await isRebuilding(ctx.db, PROJECTION)]]) });
    readers.set(ctx, r);
  }
  return r.get(PROJECTION);
}
