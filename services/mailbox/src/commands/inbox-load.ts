import type { Kysely } from "kysely";
import { AppError, notFound } from "@mam/contracts/errors.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { MailboxDb } from "../db/schema.ts";
import { initial, type Holder, type InboxesState } from "./inbox-state.ts";

/**
 * The tenant whose lock a command on the caller's inboxes takes. Only that tenant's inboxes
 * are visible to the caller; an operator key sees none (the same 404 as a missing inbox).
 */
export function tenantOf(caller: ScopeClaims): string {
  if (caller.kind === "super_admin" || !caller.tenantId) throw notFound("Inbox");
  return caller.tenantId;
}

/** One live inbox and its addresses, if there is one: the decision says whether the caller sees it. */
export async function loadInbox(db: Kysely<MailboxDb>, inboxId: string, into: InboxesState = initial()): Promise<InboxesState> {
  const r = await db
    .selectFrom("inboxes")
    .select(["inbox_id", "tenant_id", "workspace_id", "canonical_email", "version"])
    .where("inbox_id", "=", inboxId)
    .where("deleted_at", "is", null)
    .executeTakeFirst();
  if (!r) return into;
  const addresses = await db
    .selectFrom("inbox_addresses")
    .select(["address", "is_primary", "is_canonical"])
    .where("workspace_id", "=", r.workspace_id)
    .where("inbox_id", "=", r.inbox_id)
    .execute();
  into.inboxes[r.inbox_id] = {
    id: r.inbox_id,
    tenantId: r.tenant_id,
    workspaceId: r.workspace_id,
    canonicalEmail: r.canonical_email,
    version: r.version,
    addresses: Object.fromEntries(addresses.map((a) => [a.address, { isPrimary: a.is_primary, isCanonical: a.is_canonical }])),
  };
  return into;
}

/** Who holds each of these addresses, in one query. */
export async function claimsOf(db: Kysely<MailboxDb>, addresses: string[]): Promise<InboxesState> {
  const state = initial();
  if (!addresses.length) return state;
  const rows = await db.selectFrom("address_claims").selectAll().where("address", "in", addresses).execute();
  for (const r of rows) state.claims[r.address] = { tenantId: r.tenant_id, workspaceId: r.workspace_id, inboxId: r.inbox_id };
  return state;
}

/** An address released between our insert and our read is tried again, this many times. */
const RESERVE_TRIES = 3;

/**
 * Reserves an address for the inbox a command is about to create or extend, or answers who
 * holds it. Addresses are unique across tenants, whose commands hold different locks, so
 * neither a read under the lock nor a pure decision can settle it: the unique key of
 * `address_claims` does. This is the one write before a decision, and on purpose:
 * - it runs in the command's transaction, so a refusal (or any failure) rolls it back;
 * - a claim another tenant has not committed yet makes the insert wait for that commit and
 *   then do nothing, so two tenants never both hold an address;
 * - the projection's apply of InboxCreated / AddressAdded inserts the same claim with `do
 *   nothing` (replays must pass), so it could not be the arbiter: a conflict would go unseen.
 * The caller hands `decide` a state where a reserved address is free: the reservation is the
 * command's own, not a holder in its way; the projection then finds the claim in place.
 */
export async function reserveAddress(tx: Kysely<MailboxDb>, address: string, owner: Holder): Promise<Holder | undefined> {
  for (let i = 0; i < RESERVE_TRIES; i++) {
    const inserted = await tx
      .insertInto("address_claims")
      .values({ address, tenant_id: owner.tenantId, workspace_id: owner.workspaceId, inbox_id: owner.inboxId })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0) return undefined;
    const holder = await tx.selectFrom("address_claims").selectAll().where("address", "=", address).executeTakeFirst();
    if (holder) return { tenantId: holder.tenant_id, workspaceId: holder.workspace_id, inboxId: holder.inbox_id };
  }
  throw new AppError("UNAVAILABLE", `The address ${address} is changing hands; retry shortly`);
}
