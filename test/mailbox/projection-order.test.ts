import { randomUUID } from "node:crypto";
import { type Kysely, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MailboxEnvelope, MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { MailboxDb } from "@mam/mailbox/db/schema.ts";
import { applyMailboxEvents } from "@mam/mailbox/projections/mailbox-read-model.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { mailboxEnvelope } from "../support/events.ts";
import { mailboxSchemaDb } from "../support/mailbox-schema.ts";

/**
 * The relay publishes each tenant's events in commit order, tenants in parallel: a rebuild
 * may meet them interleaved in any way that keeps each tenant's order. The shared tables
 * (domain_claims, address_claims, address_quarantine) must come out the same whatever the
 * interleaving. Each history here is applied in every such order to a real schema.
 */
describe("the read model rebuilt from tenants' events interleaved in any order", () => {
  const iso = isolate();
  let db: Kysely<MailboxDb>;
  const D = "mail.test";
  const T0 = Date.parse("2026-11-01T00:00:00.000Z");
  const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();

  type Tenant = { tenantId: string; workspaceId: string };
  const tenant = (): Tenant => ({ tenantId: randomUUID(), workspaceId: randomUUID() });
  /** One aggregate's events, numbered in order. */
  function aggregate(t: Tenant, aggregateId = randomUUID()) {
    let version = 0;
    return (minutes: number, event: MailboxEvent): MailboxEnvelope =>
      mailboxEnvelope({ ...t, aggregateId, aggregateVersion: ++version, occurredAt: at(minutes) }, event);
  }

  /** Every merge of the tenants' sequences that keeps each one's order. */
  function interleavings<T>(seqs: T[][]): T[][] {
    const live = seqs.filter((s) => s.length);
    if (!live.length) return [[]];
    return live.flatMap((s, i) => interleavings(live.map((x, j) => (j === i ? x.slice(1) : x))).map((rest) => [s[0]!, ...rest]));
  }

  const TABLES = ["inboxes", "inbox_addresses", "address_claims", "address_quarantine", "domains", "domain_claims", "applied_events", "projection_checkpoint"];
  async function rebuild(order: MailboxEnvelope[]) {
    await sql.raw(`truncate ${TABLES.join(", ")}`).execute(db);
    let seq = 0;
    // One transaction per event, as the consumer applies them.
    for (const e of order) await db.transaction().execute((tx) => applyMailboxEvents(tx, [{ e, seq: ++seq }]));
    const rows = async (q: string) => (await sql.raw(q).execute(db)).rows;
    return {
      address_claims: await rows("select address, tenant_id, workspace_id, inbox_id from address_claims order by address"),
      address_quarantine: await rows("select address, tenant_id, released_at from address_quarantine order by address"),
      inbox_addresses: await rows("select * from inbox_addresses order by workspace_id, inbox_id, address"),
      domain_claims: await rows("select * from domain_claims order by domain"),
      domains: await rows("select domain_id, domain, status, verified_at, deleted_at from domains order by domain_id"),
    };
  }
  /** Rebuilt in every order, the rows are those of commit order (the first sequence's events first, then by time). */
  async function sameInEveryOrder(seqs: MailboxEnvelope[][]) {
    const commitOrder = seqs.flat().sort((a, b) => a.occurredAt.localeCompare(b.occurredAt));
    const expected = await rebuild(commitOrder);
    const orders = interleavings(seqs);
    for (const order of orders) {
      expect(await rebuild(order), order.map((e) => `${e.type}@${e.occurredAt.slice(11, 16)}`).join(" ")).toEqual(expected);
    }
    return { expected, orders: orders.length };
  }

  const created = (t: Tenant, inboxId: string, username: string): MailboxEvent => ({
    type: "InboxCreated",
    schemaVersion: 1,
    data: { inboxId, ...t, username, domain: D, address: `${username}@${D}`, displayName: null, metadata: {} },
  });
  const deleted = (inboxId: string, addresses: string[]): MailboxEvent => ({
    type: "InboxDeleted",
    schemaVersion: 1,
    data: { inboxId, addresses, reason: "deleted" },
  });

  beforeAll(async () => {
    // The mailbox's own schema and migrations, on a schema of this file's.
    db = await mailboxSchemaDb(iso);
  });
  afterAll(async () => {
    await db?.destroy();
    await iso.cleanup();
  });

  it("a name removed by one tenant and verified by another afterwards is owned by the other, whichever comes first in the stream", async () => {
    const [a, b] = [tenant(), tenant()];
    const [aId, bId] = [randomUUID(), randomUUID()];
    const records = [{ type: "MX" as const, purpose: "mx" as const, name: "x.example", value: `mx.${D}`, priority: 10, status: "verified" as const }];
    const added = (domainId: string): MailboxEvent => ({
      type: "DomainAdded",
      schemaVersion: 1,
      data: { domainId, domain: "x.example", selector: "mam1", dkimPublicKey: "MIIB", records },
    });
    const verified = (domainId: string): MailboxEvent => ({ type: "DomainChecked", schemaVersion: 1, data: { domainId, status: "verified", records } });
    const aDomain = aggregate(a, aId);
    const bDomain = aggregate(b, bId);
    const { expected, orders } = await sameInEveryOrder([
      [
        aDomain(0, added(aId)),
        aDomain(1, verified(aId)),
        aDomain(3, { type: "DomainRemoved", schemaVersion: 1, data: { domainId: aId, domain: "x.example", reason: "workspace_deleted" } }),
      ],
      [bDomain(2, added(bId)), bDomain(4, verified(bId))],
    ]);
    expect(orders).toBe(10);
    expect(expected.domain_claims).toEqual([{ domain: "x.example", workspace_id: b.workspaceId, domain_id: bId }]);
  });

  it("...also when the new owner's DNS check fails afterwards: a proof is not undone, the name stays the other's", async () => {
    const [a, b] = [tenant(), tenant()];
    const [aId, bId] = [randomUUID(), randomUUID()];
    const records = [{ type: "MX" as const, purpose: "mx" as const, name: "y.example", value: `mx.${D}`, priority: 10, status: "verified" as const }];
    const added = (domainId: string): MailboxEvent => ({
      type: "DomainAdded",
      schemaVersion: 1,
      data: { domainId, domain: "y.example", selector: "mam1", dkimPublicKey: "MIIB", records },
    });
    const checked = (domainId: string, status: "verified" | "pending"): MailboxEvent => ({
      type: "DomainChecked",
      schemaVersion: 1,
      data: { domainId, status, records: records.map((r) => ({ ...r, status })) },
    });
    const aDomain = aggregate(a, aId);
    const bDomain = aggregate(b, bId);
    const { expected } = await sameInEveryOrder([
      [
        aDomain(0, added(aId)),
        aDomain(1, checked(aId, "verified")),
        aDomain(3, { type: "DomainRemoved", schemaVersion: 1, data: { domainId: aId, domain: "y.example", reason: "workspace_deleted" } }),
      ],
      [bDomain(2, added(bId)), bDomain(4, checked(bId, "verified")), bDomain(5, checked(bId, "pending"))],
    ]);
    expect(expected.domain_claims).toEqual([{ domain: "y.example", workspace_id: b.workspaceId, domain_id: bId }]);
  });

  it("an address given up by two tenants in turn and then taken by a third: the third holds it, nothing is held back", async () => {
    const [a, b, c] = [tenant(), tenant(), tenant()];
    const ids = [randomUUID(), randomUUID(), randomUUID()] as const;
    const address = `alice@${D}`;
    const [aOf, bOf, cOf] = [aggregate(a, ids[0]), aggregate(b, ids[1]), aggregate(c, ids[2])];
    const { expected, orders } = await sameInEveryOrder([
      [aOf(0, created(a, ids[0], "alice")), aOf(1, deleted(ids[0], [address]))],
      [bOf(2, created(b, ids[1], "alice")), bOf(3, deleted(ids[1], [address]))],
      [cOf(4, created(c, ids[2], "alice"))],
    ]);
    expect(orders).toBe(30);
    expect(expected.address_claims).toEqual([{ address, tenant_id: c.tenantId, workspace_id: c.workspaceId, inbox_id: ids[2] }]);
    expect(expected.address_quarantine).toEqual([]);
  });

  it("an address given up by two tenants in turn: held back for the last to give it up, from then", async () => {
    const [a, b] = [tenant(), tenant()];
    const [aInbox, bInbox] = [randomUUID(), randomUUID()];
    const address = `alice@${D}`;
    const aOf = aggregate(a, aInbox);
    const bOf = aggregate(b, bInbox);
    const { expected } = await sameInEveryOrder([
      [aOf(0, created(a, aInbox, "alice")), aOf(1, deleted(aInbox, [address]))],
      [bOf(2, created(b, bInbox, "alice")), bOf(3, deleted(bInbox, [address]))],
    ]);
    expect(expected.address_claims).toEqual([]);
    expect(expected.address_quarantine).toEqual([{ address, tenant_id: b.tenantId, released_at: new Date(at(3)) }]);
  });

  it("an alias removed by one tenant and added by another afterwards is the other's, never held back to the first", async () => {
    const [a, b] = [tenant(), tenant()];
    const [aInbox, bInbox] = [randomUUID(), randomUUID()];
    const alias = `shared@${D}`;
    const aOf = aggregate(a, aInbox);
    const bOf = aggregate(b, bInbox);
    const { expected } = await sameInEveryOrder([
      [
        aOf(0, created(a, aInbox, "first")),
        aOf(1, { type: "AddressAdded", schemaVersion: 1, data: { inboxId: aInbox, address: alias, isPrimary: false } }),
        aOf(2, { type: "AddressRemoved", schemaVersion: 1, data: { inboxId: aInbox, address: alias, newPrimary: null } }),
      ],
      [bOf(3, created(b, bInbox, "second")), bOf(4, { type: "AddressAdded", schemaVersion: 1, data: { inboxId: bInbox, address: alias, isPrimary: true } })],
    ]);
    expect(expected.address_claims).toContainEqual({ address: alias, tenant_id: b.tenantId, workspace_id: b.workspaceId, inbox_id: bInbox });
    expect(expected.address_quarantine).toEqual([]);
  });
});
