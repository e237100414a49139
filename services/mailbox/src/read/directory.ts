import { AppError, parseOrThrow } from "@mam/contracts/errors.ts";
import { DirectoryLookupQuery, DirectoryPageQuery, type DirectoryLookup, type DirectoryPage } from "@mam/contracts/mailbox-api.ts";
import type { MailboxContext } from "../context.ts";
import { readModelRebuilding } from "./rebuilding.ts";
import { PROJECTION } from "../projections/mailbox-read-model.ts";

/**
 * A page of every claimed address, for smtp-ingress's in-memory directory. The sequence is
 * read first: the read model holds at least every event up to the consumer's ack floor, so
 * a reader that replays from there misses nothing, whenever it reads each page. Not while
 * the read model is rebuilt: a page read after the reset emptied it lacks addresses from
 * before a sequence read before it (smtp-ingress would answer 550 for real addresses), so
 * it answers UNAVAILABLE then and the loader asks again.
 */
export async function directoryPage(ctx: MailboxContext, stream: string, raw: unknown): Promise<DirectoryPage> {
  const q = parseOrThrow(DirectoryPageQuery, raw);
  // Asked before and after the rows (see directoryLookup).
  if (await readModelRebuilding(ctx)) throw new AppError("UNAVAILABLE", "The mailbox's read model is being rebuilt; retry shortly");
  const info = await ctx.bus.jsm.consumers.info(stream, PROJECTION).catch(() => undefined);
  const fromSeq = info?.ack_floor.stream_seq ?? 0;
  let rows = ctx.db.selectFrom("address_claims").select(["address", "tenant_id", "workspace_id", "inbox_id"]).orderBy("address").limit(q.limit);
  if (q.after !== undefined) rows = rows.where("address", ">", q.after);
  const entries = (await rows.execute()).map((r) => ({ address: r.address, tenantId: r.tenant_id, workspaceId: r.workspace_id, inboxId: r.inbox_id }));
  // Asked after the rows: no record then means no reset emptied the table before they were read.
  if (await readModelRebuilding(ctx)) throw new AppError("UNAVAILABLE", "The mailbox's read model is being rebuilt; retry shortly");
  return { fromSeq, entries };
}

/**
 * The claims of these addresses, for RCPT when smtp-ingress's directory lacks them though it
 * holds every event in the stream: a command commits its events with the read model's rows
 * and publishes them after, so an inbox whose creation was answered before NATS stored its
 * event (the API waits PUBLISH_WAIT_MS, not longer) is here and not yet in the stream. Not
 * while the read model is rebuilt (an address not replayed yet would look unclaimed).
 */
export async function directoryLookup(ctx: MailboxContext, raw: unknown): Promise<DirectoryLookup> {
  const q = parseOrThrow(DirectoryLookupQuery, raw);
  // Asked before the rows and after them: a rebuild under way at either moment is seen.
  const rebuilding = () => new AppError("UNAVAILABLE", "The mailbox's read model is being rebuilt; retry shortly");
  if (await readModelRebuilding(ctx)) throw rebuilding();
  const rows = await ctx.db
    .selectFrom("address_claims")
    .select(["address", "tenant_id", "workspace_id", "inbox_id"])
    .where(
      "address",
      "in",
      q.addresses.map((a) => a.toLowerCase()),
    )
    .execute();
  if (await readModelRebuilding(ctx)) throw rebuilding();
  return { entries: rows.map((r) => ({ address: r.address, tenantId: r.tenant_id, workspaceId: r.workspace_id, inboxId: r.inbox_id })) };
}
