import { sql, type Kysely } from "kysely";
import type { MailboxEnvelope } from "@mam/contracts/mailbox-events.ts";
import { applyOnceMany, type Sequenced } from "@mam/service-kit/event-sourcing.ts";
import type { MailboxDb } from "../db/schema.ts";
import { evolveDomains } from "./domains.ts";
import { evolveDrafts } from "./drafts.ts";
import { evolveLists } from "./lists.ts";
import { evolveMessages, insertMessages, isNewMessage, recordDeliveries, type DeliveredEvent, type NewMessageEvent } from "./messages.ts";

export const PROJECTION = "mailbox-read-model";

/** Applies one mailbox event to the read model in the caller's transaction, once. */
export async function applyMailboxEvent(tx: Kysely<MailboxDb>, e: MailboxEnvelope, streamSeq: number): Promise<boolean> {
  return (await applyMailboxEvents(tx, [{ e, seq: streamSeq }])).length === 1;
}

/**
 * Applies events in stream order, each once. Runs of new messages and deliveries (a
 * group-committed batch of inbound mail, or of local copies each with the delivery it
 * records) are written with one statement per table rather than one per message: the
 * messages first, then the deliveries. That is their order in the stream as far as it
 * matters, since a message's delivery always comes after the message, and a delivery
 * touches no row another message's insert does.
 */
export function applyMailboxEvents(tx: Kysely<MailboxDb>, events: Sequenced<MailboxEnvelope>[]): Promise<Sequenced<MailboxEnvelope>[]> {
  return applyOnceMany(tx, PROJECTION, events, async (fresh) => {
    let messages: NewMessageEvent[] = [];
    let deliveries: DeliveredEvent[] = [];
    const flush = async () => {
      await insertMessages(tx, messages);
      await recordDeliveries(tx, deliveries);
      messages = [];
      deliveries = [];
    };
    for (const { e } of fresh) {
      if (isNewMessage(e)) messages.push(e);
      else if (e.type === "MessageDelivered") deliveries.push(e);
      else {
        await flush();
        await evolve(tx, e);
      }
    }
    await flush();
  });
}

async function evolve(tx: Kysely<MailboxDb>, e: MailboxEnvelope): Promise<void> {
  const workspaceId = e.workspaceId!;
  switch (e.type) {
    case "InboxCreated": {
      const d = e.data;
      await tx
        .insertInto("inboxes")
        .values({
          workspace_id: d.workspaceId,
          inbox_id: d.inboxId,
          tenant_id: d.tenantId,
          username: d.username,
          domain: d.domain,
          canonical_email: d.address,
          display_name: d.displayName,
          metadata: JSON.stringify(d.metadata),
          version: e.aggregateVersion,
          created_at: e.occurredAt,
          updated_at: e.occurredAt,
          deleted_at: null,
        })
        .onConflict((oc) => oc.columns(["workspace_id", "inbox_id"]).doNothing())
        .execute();
      await tx
        .insertInto("inbox_addresses")
        .values({ workspace_id: d.workspaceId, inbox_id: d.inboxId, address: d.address, is_primary: true, is_canonical: true, created_at: e.occurredAt })
        .onConflict((oc) => oc.columns(["workspace_id", "inbox_id", "address"]).doNothing())
        .execute();
      await claim(tx, d.address, { tenant_id: d.tenantId, workspace_id: d.workspaceId, inbox_id: d.inboxId }, e.occurredAt);
      return;
    }
    case "InboxUpdated": {
      const set: { updated_at: string; version: number; display_name?: string | null; metadata?: string } = {
        updated_at: e.occurredAt,
        version: e.aggregateVersion,
      };
      if (e.data.displayName !== undefined) set.display_name = e.data.displayName;
      if (e.data.metadata !== undefined) set.metadata = JSON.stringify(e.data.metadata);
      await tx.updateTable("inboxes").set(set).where("workspace_id", "=", workspaceId).where("inbox_id", "=", e.data.inboxId).execute();
      return;
    }
    case "InboxDeleted":
      // History stays (soft delete); the addresses are released (held back from other tenants for a while).
      await tx
        .updateTable("inboxes")
        .set({ deleted_at: e.occurredAt, updated_at: e.occurredAt, version: e.aggregateVersion })
        .where("workspace_id", "=", workspaceId)
        .where("inbox_id", "=", e.data.inboxId)
        .execute();
      await tx.deleteFrom("inbox_addresses").where("workspace_id", "=", workspaceId).where("inbox_id", "=", e.data.inboxId).execute();
      await release(tx, e.data.inboxId, null, e.data.addresses, e.tenantId!, e.occurredAt);
      return;
    case "AddressAdded": {
      const d = e.data;
      await bump(tx, e);
      if (d.isPrimary) {
        await tx.updateTable("inbox_addresses").set({ is_primary: false }).where("workspace_id", "=", workspaceId).where("inbox_id", "=", d.inboxId).execute();
      }
      await tx
        .insertInto("inbox_addresses")
        .values({ workspace_id: workspaceId, inbox_id: d.inboxId, address: d.address, is_primary: d.isPrimary, is_canonical: false, created_at: e.occurredAt })
        .onConflict((oc) => oc.columns(["workspace_id", "inbox_id", "address"]).doNothing())
        .execute();
      await claim(tx, d.address, { tenant_id: e.tenantId!, workspace_id: workspaceId, inbox_id: d.inboxId }, e.occurredAt);
      return;
    }
    case "AddressRemoved": {
      const d = e.data;
      await bump(tx, e);
      await tx
        .deleteFrom("inbox_addresses")
        .where("workspace_id", "=", workspaceId)
        .where("inbox_id", "=", d.inboxId)
        .where("address", "=", d.address)
        .execute();
      await release(tx, d.inboxId, d.address, [d.address], e.tenantId!, e.occurredAt);
      if (d.newPrimary) {
        await tx
          .updateTable("inbox_addresses")
          .set({ is_primary: true })
          .where("workspace_id", "=", workspaceId)
          .where("inbox_id", "=", d.inboxId)
          .where("address", "=", d.newPrimary)
          .execute();
      }
      return;
    }
    case "ListCreated":
    case "ListUpdated":
    case "ListDeleted":
    case "ListEntryAdded":
    case "ListEntryUpdated":
    case "ListEntryRemoved":
      return evolveLists(tx, e);
    case "DomainAdded":
    case "DomainChecked":
    case "DomainRemoved":
      return evolveDomains(tx, e);
    case "WorkspaceClosed":
      await tx
        .insertInto("closed_workspaces")
        .values({ workspace_id: e.data.workspaceId, tenant_id: e.data.tenantId, closed_at: e.occurredAt })
        .onConflict((oc) => oc.column("workspace_id").doNothing())
        .execute();
      return;
    case "MessageSent":
    case "MessageReceived":
    case "MessageFlagged":
    case "MessageDeleted":
    case "MessageDelivered":
    case "MessageBounced":
      return evolveMessages(tx, e);
    case "DraftSaved":
    case "DraftDeleted":
      return evolveDrafts(tx, e);
    default: {
      const unreachable: never = e;
      throw new Error(`unhandled mailbox event ${(unreachable as MailboxEnvelope).type}`);
    }
  }
}

/*
 * Address claims and quarantine are shared by all tenants, whose events reach the stream in
 * parallel: a rebuild may apply B's claim of an address before A's release that preceded it
 * (the claim then finds A still there), or B's release before A's. Each address converges
 * all the same, to what applying in commit order gives: held by the live inbox that has it
 * (`inbox_addresses`), and quarantined to its latest release unless claimed since.
 */

/**
 * Replays re-create the claims the command path made; a claim already there stays. A claim
 * ends the quarantine of the releases before it (the decision allowed it: the same tenant,
 * or time passed); a later release, of a tenant whose events came first, stays.
 */
async function claim(tx: Kysely<MailboxDb>, address: string, owner: { tenant_id: string; workspace_id: string; inbox_id: string }, at: string) {
  await tx
    .insertInto("address_claims")
    .values({ address, ...owner })
    .onConflict((oc) => oc.doNothing())
    .execute();
  await tx.deleteFrom("address_quarantine").where("address", "=", address).where("released_at", "<=", new Date(at)).execute();
}

/**
 * Addresses an inbox gives up: one (an alias removed), or all it has (`listed`, with the
 * claims it holds). Each goes to another live inbox that has it, if one does (its claim was
 * applied first, see above), else is free again, held back from other tenants from this
 * moment (decisions read `address_quarantine` with the claims, in one statement).
 */
async function release(tx: Kysely<MailboxDb>, inboxId: string, only: string | null, listed: string[], tenantId: string, at: string) {
  let q = tx.deleteFrom("address_claims").where("inbox_id", "=", inboxId);
  if (only !== null) q = q.where("address", "=", only);
  const held = await q.returning("address").execute();
  const given = [...new Set([...listed, ...held.map((g) => g.address)])];
  if (!given.length) return;
  await claimForLiveHolders(tx, given);
  await tx
    .insertInto("address_quarantine")
    .values(given.map((address) => ({ address, tenant_id: tenantId, released_at: at })))
    .onConflict((oc) =>
      oc
        .column("address")
        .doUpdateSet((eb) => ({ tenant_id: eb.ref("excluded.tenant_id"), released_at: eb.ref("excluded.released_at") }))
        // The latest release is the one in force, whichever tenant's came first.
        .where("address_quarantine.released_at", "<", (eb) => eb.ref("excluded.released_at")),
    )
    .execute();
  await endQuarantinesBeforeClaims(tx, given);
}

/** Unclaimed addresses that a live inbox still has: claimed for it (the one that has had it longest). */
async function claimForLiveHolders(tx: Kysely<MailboxDb>, addresses: string[]) {
  await sql`
    insert into address_claims (address, tenant_id, workspace_id, inbox_id)
    select distinct on (a.address) a.address, i.tenant_id, a.workspace_id, a.inbox_id
    from inbox_addresses a
    join inboxes i on i.workspace_id = a.workspace_id and i.inbox_id = a.inbox_id and i.deleted_at is null
    where a.address = any(${addresses}::text[])
      and not exists (select 1 from address_claims c where c.address = a.address)
    order by a.address, a.created_at, a.inbox_id
    on conflict do nothing`.execute(tx);
}

/** A release older than the claim that holds its address now was ended by that claim. */
async function endQuarantinesBeforeClaims(tx: Kysely<MailboxDb>, addresses: string[]) {
  await sql`
    delete from address_quarantine q
    using address_claims c, inbox_addresses a
    where q.address = any(${addresses}::text[])
      and c.address = q.address
      and a.workspace_id = c.workspace_id and a.inbox_id = c.inbox_id and a.address = c.address
      and q.released_at <= a.created_at`.execute(tx);
}

function bump(tx: Kysely<MailboxDb>, e: MailboxEnvelope) {
  return tx
    .updateTable("inboxes")
    .set({ version: e.aggregateVersion, updated_at: e.occurredAt })
    .where("workspace_id", "=", e.workspaceId!)
    .where("inbox_id", "=", e.aggregateId)
    .execute();
}
