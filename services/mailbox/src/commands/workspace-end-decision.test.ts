import { describe, expect, it } from "vitest";
import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import { deciderSpec } from "@mam/testing/decider-spec.ts";
import { addressAdded, filed, ids, inboxCreated, inboxDeleted, mailboxes, records } from "./decision-fixtures.ts";
import { decide, evolve, initial, type EndWorkspace, type PlacedEvent } from "./workspace-end-decision.ts";

const spec = deciderSpec({ initial, evolve, decide });

const end: EndWorkspace = { tenantId: ids.acme, workspaceId: ids.acmeMain };
const closed: MailboxEvent = { type: "WorkspaceClosed", schemaVersion: 1, data: { workspaceId: ids.acmeMain, tenantId: ids.acme } };
const domainAdded = (domainId: string, domain: string, workspaceId: string): PlacedEvent => ({
  type: "DomainAdded",
  schemaVersion: 1,
  data: { domainId, domain, selector: "mam1", dkimPublicKey: "pk", records: records(domain) },
  at: { tenantId: ids.acme, workspaceId },
});
const inSales = inboxCreated("01900000-0000-7000-8000-00000000c0a1", ids.acme, ids.acmeSales, "elsewhere");
/** acme's main workspace: support@ (with an alias) and sales@, one domain; its sales workspace: one inbox, one domain. */
const history: PlacedEvent[] = [
  ...mailboxes,
  inSales,
  addressAdded(ids.support, "help@mail.test"),
  domainAdded(ids.domain, "acme.example", ids.acmeMain),
  { type: "DomainChecked", schemaVersion: 1, data: { domainId: ids.domain, status: "verified", records: records("acme.example", "verified") } },
  domainAdded(ids.newDomain, "sales.example", ids.acmeSales),
];

const workspaceDeleted = (inboxId: string, addresses: string[]): MailboxEvent => ({
  type: "InboxDeleted",
  schemaVersion: 1,
  data: { inboxId, addresses, reason: "workspace_deleted" },
});

describe("EndWorkspace", () => {
  it("closes the workspace, deletes each live inbox with its addresses, releases each domain: that workspace's only", () => {
    const { drafts } = spec
      .given(history)
      .when(end)
      .expectEvents([
        closed,
        workspaceDeleted(ids.support, ["support@mail.test", "help@mail.test"]),
        workspaceDeleted(ids.sales, ["sales@mail.test"]),
        { type: "DomainRemoved", schemaVersion: 1, data: { domainId: ids.domain, domain: "acme.example", reason: "workspace_deleted" } },
      ]);
    expect(filed(drafts)).toEqual([
      { tenantId: ids.acme, workspaceId: ids.acmeMain, aggregateId: ids.acmeMain, aggregateVersion: 1 },
      { tenantId: ids.acme, workspaceId: ids.acmeMain, aggregateId: ids.support, aggregateVersion: 3 },
      { tenantId: ids.acme, workspaceId: ids.acmeMain, aggregateId: ids.sales, aggregateVersion: 2 },
      { tenantId: ids.acme, workspaceId: ids.acmeMain, aggregateId: ids.domain, aggregateVersion: 3 },
    ]);
  });

  it("is idempotent: decided again after its events (a redelivery), it decides nothing", () => {
    const first = spec.given(history).when(end).outcome.events;
    spec
      .given([...history, ...first])
      .when(end)
      .expectEvents([]);
  });

  it("finishes what a crash left: an inbox already deleted is not deleted twice, the close not recorded twice", () => {
    spec
      .given([...history, closed, workspaceDeleted(ids.support, ["support@mail.test", "help@mail.test"])])
      .when(end)
      .expectEvents([workspaceDeleted(ids.sales, ["sales@mail.test"]), expect.objectContaining({ type: "DomainRemoved" })]);
  });

  it("ends an inbox created after the close was recorded but before the cascade (nothing survives in the workspace)", () => {
    const late = inboxCreated(ids.newInbox, ids.acme, ids.acmeMain, "late");
    spec
      .given([...mailboxes, closed, inboxDeleted(ids.support, ["support@mail.test"]), late])
      .when(end)
      .expectEvents([workspaceDeleted(ids.sales, ["sales@mail.test"]), workspaceDeleted(ids.newInbox, ["late@mail.test"])]);
  });

  it("ends a large workspace in batches, closing it in the first", () => {
    const first = spec.given(history).when({ ...end, batch: 2 }).outcome.events;
    expect(first.map((e) => e.type)).toEqual(["WorkspaceClosed", "InboxDeleted", "InboxDeleted"]);
    const second = spec
      .given([...history, ...first])
      .when({ ...end, batch: 2 })
      .expectEvents([{ type: "DomainRemoved", schemaVersion: 1, data: { domainId: ids.domain, domain: "acme.example", reason: "workspace_deleted" } }]).events;
    spec
      .given([...history, ...first, ...second])
      .when({ ...end, batch: 2 })
      .expectEvents([]);
  });

  it("leaves other tenants alone, even for the same workspace id", () => {
    spec
      .given(mailboxes)
      .when({ tenantId: ids.globex, workspaceId: ids.acmeMain })
      .expectEvents([{ type: "WorkspaceClosed", schemaVersion: 1, data: { workspaceId: ids.acmeMain, tenantId: ids.globex } }]);
  });
});
