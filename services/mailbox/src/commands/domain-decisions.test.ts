import { describe, expect, it } from "vitest";
import { MAX_DOMAINS_PER_WORKSPACE } from "@mam/contracts/domains-api.ts";
import { deciderSpec } from "@mam/testing/decider-spec.ts";
import { addressAdded, callers, filed, ids, inboxCreated, inboxDeleted, mailboxes, records } from "./decision-fixtures.ts";
import { decide, evolve, initial, type DomainCommand, type PlacedEvent } from "./domain-decisions.ts";

const spec = deciderSpec<DomainCommand, ReturnType<typeof initial>, PlacedEvent>({ initial, evolve, decide });
const { acmeTenant, acmeMain, acmeSales, supportInbox, globexTenant } = callers;
const acmeAt = { tenantId: ids.acme, workspaceId: ids.acmeMain };

const domainAdded = (domain: string, domainId = ids.domain, at = acmeAt): PlacedEvent => ({
  type: "DomainAdded",
  schemaVersion: 1,
  data: { domainId, domain, selector: "mam1", dkimPublicKey: "MIIB", records: records(domain) },
  at,
});
const domainRemoved = (domain: string, domainId = ids.domain): PlacedEvent => ({ type: "DomainRemoved", schemaVersion: 1, data: { domainId, domain } });
const acmeDomain = [...mailboxes, domainAdded("acme.example")];

describe("AddDomain", () => {
  const add = (domain: string, workspaceId = ids.acmeMain): DomainCommand => ({
    type: "AddDomain",
    tenantId: ids.acme,
    workspaceId,
    domainId: ids.newDomain,
    domain,
    selector: "mam1",
    dkimPublicKey: "MIIC",
    records: records(domain),
  });

  it("registers the domain with its public key and the records to publish, version 1", () => {
    const { drafts } = spec
      .given(acmeDomain)
      .when(add("beta.example"))
      .expectEvents([
        {
          type: "DomainAdded",
          schemaVersion: 1,
          data: { domainId: ids.newDomain, domain: "beta.example", selector: "mam1", dkimPublicKey: "MIIC", records: records("beta.example") },
        },
      ]);
    expect(filed(drafts)).toEqual([{ tenantId: ids.acme, workspaceId: ids.acmeMain, aggregateId: ids.newDomain, aggregateVersion: 1 }]);
  });

  it("refuses a name any workspace holds (409), takes it once removed", () => {
    spec
      .given(acmeDomain)
      .when(add("acme.example"))
      .expectRefusal("CONFLICT", /already registered/);
    spec
      .given(acmeDomain)
      .when(add("acme.example", ids.acmeSales))
      .expectRefusal("CONFLICT", /already registered/);
    spec
      .given([...acmeDomain, domainRemoved("acme.example")])
      .when(add("acme.example", ids.acmeSales))
      .expectEvents([expect.objectContaining({ type: "DomainAdded" })]);
  });

  it(`refuses the ${MAX_DOMAINS_PER_WORKSPACE + 1}th domain of a workspace (409); other workspaces' do not count`, () => {
    const full = Array.from({ length: MAX_DOMAINS_PER_WORKSPACE }, (_, i) =>
      domainAdded(`d${i}.example`, `01900000-0000-7000-8000-${String(i).padStart(12, "0")}`),
    );
    spec
      .given(full)
      .when(add("beta.example"))
      .expectRefusal("CONFLICT", /at most 100 domains/);
    spec
      .given(full)
      .when(add("beta.example", ids.acmeSales))
      .expectEvents([expect.objectContaining({ type: "DomainAdded" })]);
  });
});

describe("CheckDomain", () => {
  const check = (status: "pending" | "verified", ref = "acme.example", caller = acmeTenant): DomainCommand => ({
    type: "CheckDomain",
    caller,
    ref,
    checked: { status, records: records("acme.example", status) },
  });

  it("records a change of status and records, one version on", () => {
    const { drafts } = spec
      .given(acmeDomain)
      .when(check("verified"))
      .expectEvents([
        { type: "DomainChecked", schemaVersion: 1, data: { domainId: ids.domain, status: "verified", records: records("acme.example", "verified") } },
      ]);
    expect(filed(drafts)).toEqual([{ ...acmeAt, aggregateId: ids.domain, aggregateVersion: 2 }]);
  });

  it("records nothing when the DNS says what was known", () => {
    spec.given(acmeDomain).when(check("pending")).expectEvents([]);
    const verified: PlacedEvent = {
      type: "DomainChecked",
      schemaVersion: 1,
      data: { domainId: ids.domain, status: "verified", records: records("acme.example", "verified") },
    };
    spec
      .given([...acmeDomain, verified])
      .when(check("verified"))
      .expectEvents([]);
    spec
      .given([...acmeDomain, verified])
      .when(check("pending"))
      .expectEvents([expect.objectContaining({ data: expect.objectContaining({ status: "pending" }) })]);
  });

  it("finds the domain by id as by name, for the workspace's wk_ key too", () => {
    spec
      .given(acmeDomain)
      .when(check("verified", ids.domain, acmeMain))
      .expectEvents([expect.objectContaining({ type: "DomainChecked" })]);
  });

  it("answers 404 to other workspaces and tenants, to ak_ keys, and for a removed domain", () => {
    for (const caller of [acmeSales, globexTenant, supportInbox])
      spec
        .given(acmeDomain)
        .when(check("verified", "acme.example", caller))
        .expectRefusal("NOT_FOUND");
    spec
      .given([...acmeDomain, domainRemoved("acme.example")])
      .when(check("verified"))
      .expectRefusal("NOT_FOUND");
  });
});

describe("RemoveDomain", () => {
  const remove = (caller = acmeTenant, ref = "acme.example"): DomainCommand => ({ type: "RemoveDomain", caller, ref });

  it("removes a domain no address uses", () => {
    const { drafts } = spec
      .given(acmeDomain)
      .when(remove())
      .expectEvents([domainRemoved("acme.example")]);
    expect(filed(drafts)[0]!.aggregateVersion).toBe(2);
  });

  it("refuses while an inbox or an alias, of any tenant, is on the domain (409)", () => {
    const inbox = inboxCreated(ids.newInbox, ids.acme, ids.acmeMain, "hello", "acme.example");
    spec
      .given([...acmeDomain, inbox])
      .when(remove())
      .expectRefusal("CONFLICT", /still used/);
    spec
      .given([...acmeDomain, addressAdded(ids.rival, "rival@acme.example")])
      .when(remove())
      .expectRefusal("CONFLICT", /still used/);
    spec
      .given([...acmeDomain, inbox, inboxDeleted(ids.newInbox, ["hello@acme.example"])])
      .when(remove())
      .expectEvents([domainRemoved("acme.example")]);
  });

  it("is not fooled by a longer domain ending the same way", () => {
    spec
      .given([...acmeDomain, addressAdded(ids.support, "x@notacme.example")])
      .when(remove())
      .expectEvents([domainRemoved("acme.example")]);
  });

  it("answers 404 to outsiders and for a domain never added", () => {
    spec.given(acmeDomain).when(remove(acmeSales)).expectRefusal("NOT_FOUND");
    spec.given(acmeDomain).when(remove(acmeTenant, "other.example")).expectRefusal("NOT_FOUND");
  });
});
