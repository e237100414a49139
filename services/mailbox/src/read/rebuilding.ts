import { CoalescedReads } from "@mam/service-kit/coalesced-reads.ts";
import { isRebuilding } from "@mam/service-kit/rebuild-guard.ts";
import { perContext, type MailboxContext } from "../context.ts";
import { PROJECTION } from "../projections/mailbox-read-model.ts";

const readers = perContext(
  (ctx) => new CoalescedReads({ idOf: (p: string) => p, read: async () => new Map([[PROJECTION, await isRebuilding(ctx.db, PROJECTION)]]) }),
);

/**
 * Whether the mailbox's read model is being rebuilt (its record is there), read by a
 * statement begun after the call, so a caller may check it after its own reads. The checks
 * made at the same moment (deliveries, the feed's and the directory's reads, the retry queue)
 * share one statement (see CoalescedReads).
 */
export function readModelRebuilding(ctx: MailboxContext): Promise<boolean> {
  return readers(ctx).get(PROJECTION);
}
