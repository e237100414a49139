import { sql, type Kysely } from "kysely";
import { notFound } from "@mam/contracts/errors.ts";
import { LostRace } from "@mam/service-kit/commands.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { MailboxDb } from "../db/schema.ts";
import { initial, type InboxesState } from "./inbox-state.ts";

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
    .select(["inbox_id", "tenant_id", "workspace_id", "canonical_email", "version", "metadata"])
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
    metadata: (r.metadata ?? {}) as Record<string, unknown>,
    addresses: Object.fromEntries(addresses.map((a) => [a.address, { isPrimary: a.is_primary, isCanonical: a.is_canonical }])),
  };
  return into;
}

/**
 * Who holds each of these addresses, and which of them were released by whom and when, in
 * one statement: an inbox deleted meanwhile (its claims gone, its releases written in the
 * same commit) is seen either still holding or having released, never neither.
 */
export async function claimsOf(db: Kysely<MailboxDb>, addresses: string[]): Promise<InboxesState> {
  const state = initial();
  if (!addresses.length) return state;
  const rows = await db
    .selectFrom("address_claims")
    .select(["address", "tenant_id", "workspace_id", "inbox_id", sql<Date | null>`null::timestamptz`.as("released_at")])
    .where("address", "in", addresses)
    .unionAll(
      db
        .selectFrom("address_quarantine")
        .select(["address", "tenant_id", sql<string>`null::uuid`.as("workspace_id"), sql<string>`null::uuid`.as("inbox_id"), "released_at"])
        .where("address", "in", addresses),
    )
    .execute();
  for (const r of rows) {
    if (r.released_at === null) state.claims[r.address] = { tenantId: r.tenant_id, workspaceId: r.workspace_id, inboxId: r.inbox_id };
    else state.released![r.address] = { tenantId: r.tenant_id, at: new Date(r.released_at).toISOString() };
  }
  return state;
}

/** Whether the mailbox heard that this workspace ended. */
export async function isClosed(db: Kysely<MailboxDb>, workspaceId: string): Promise<boolean> {
  const r = await db.selectFrom("closed_workspaces").select("workspace_id").where("workspace_id", "=", workspaceId).executeTakeFirst();
  return r !== undefined;
}

/**
 * Addresses are unique across tenants, whose commands hold different locks, so neither a
 * read under the lock nor a pure decision can settle who gets one: the unique key of
 * `address_claims` does. The decision picks an address that was free when loaded; applying
 * the event inserts its claim (`do nothing` on conflict, so that replays pass; an insert
 * meeting another tenant's uncommitted claim waits for that commit). This check, after the
 * apply, tells whether the claim is really ours; if another command won it meanwhile, the
 * command is rolled back and decided again with the winner in its state (LostRace).
 */
export async function assertClaimed(tx: Kysely<MailboxDb>, address: string, inboxId: string): Promise<void> {
  const holder = await tx.selectFrom("address_claims").select("inbox_id").where("address", "=", address).executeTakeFirst();
  if (holder?.inbox_id !== inboxId) throw new LostRace(`The address ${address} was claimed by another request`);
}
