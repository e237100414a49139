import { describe, expect, it } from "vitest";
import { MAX_DOMAINS_PER_WORKSPACE } from "@mam/contracts/domains-api.ts";
import { deciderSpec } from "@mam/testing/decider-spec.ts";
import { addressAdded, callers, filed, ids, inboxCreated, inboxDeleted, mailboxes, records } from "./decision-fixtures.ts";
import { decide, evolve, initial, lapsed, type DomainCommand, type PlacedEvent } from "./domain-decisions.ts";

const spec = deciderSpec<DomainCommand, ReturnType<typeof initial>, PlacedEvent>({ initial, evolve, decide });
const { acmeTenant, acmeMain, acmeSales, supportInbox, globexTenant } = callers;
const acmeAt = { tenantId: ids.acme, workspaceId: ids.acmeMain };

const globexAt = { tenantId: ids.globex, workspaceId: ids.globexMain };
const globexDomain = "01900000-0000-7000-8000-00000000f002";

/** Claims are made at T0; commands are decided an hour later unless they say otherwise. */
const T0 = "2026-12-01T00:00:00.000Z";
const DAY = 86_400_000;
const at = (ms: number) => ({ now: new Date(Date.parse(T0) + ms).toISOString(), claimTtlDays: 7 });
const clock = at(3_600_000);

const domainAdded = (domain: string, domainId = ids.domain, placed = acmeAt): PlacedEvent => ({
  type: "DomainAdded",
  schemaVersion: 1,
  data: { domainId, domain, selector: "mam1", dkimPublicKey: "MIIB", records: records(domain) },
  at: placed,
  occurredAt: T0,
});
const domainRemoved = (domain: string, domainId = ids.domain): PlacedEvent => ({ type: "DomainRemoved", schemaVersion: 1, data: { domainId, domain } });
const domainVerified = (domainId = ids.domain, domain = "acme.example"): PlacedEvent => ({
  type: "DomainChecked",
  schemaVersion: 1,
  data: { domainId, status: "verified", records: records(domain, "verified") },
});
const acmeDomain = [...mailboxes, domainAdded("acme.example")];
/** globex claimed acme.example (before acme, or as well as acme), without proving anything. */
const globexClaim = [...mailboxes, domainAdded("acme.example", globexDomain, globexAt)];
const squatted = [...acmeDomain, domainAdded("acme.example", globexDomain, globexAt)];

describe("AddDomain", () => {
  const add = (domain: string, workspaceId = ids.acmeMain, when = clock, tenantId = ids.acme): DomainCommand => ({
    type: "AddDomain",
    tenantId,
    workspaceId,
    domainId: ids.newDomain,
    domain,
    selector: "mam1",
    dkimPublicKey: "MIIC",
    records: records(domain),
    ...when,
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

  it("adds nothing to a workspace that ended: 404 (other workspaces still add)", () => {
    const closed: PlacedEvent = { type: "WorkspaceClosed", schemaVersion: 1, data: { workspaceId: ids.acmeMain, tenantId: ids.acme } };
    spec
      .given([...acmeDomain, closed])
      .when(add("beta.example"))
      .expectRefusal("NOT_FOUND", /Workspace/);
    spec
      .given([...acmeDomain, closed])
      .when(add("beta.example", ids.acmeSales))
      .expectEvents([
        {
          type: "DomainAdded",
          schemaVersion: 1,
          data: { domainId: ids.newDomain, domain: "beta.example", selector: "mam1", dkimPublicKey: "MIIC", records: records("beta.example") },
        },
      ]);
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

  it("another tenant's unverified claim does not hold the name: a second claim is made, with its own key", () => {
    spec
      .given(globexClaim)
      .when(add("acme.example"))
      .expectEvents([expect.objectContaining({ type: "DomainAdded", data: expect.objectContaining({ domain: "acme.example", dkimPublicKey: "MIIC" }) })]);
  });

  it("refuses a name another tenant has verified (409), and says why", () => {
    spec
      .given([...globexClaim, domainVerified(globexDomain)])
      .when(add("acme.example"))
      .expectRefusal("CONFLICT", /already registered: another account has verified it/);
  });

  it("the tenant's own unverified claim holds the name in all its workspaces until the TTL; then it is released as expired and the name taken anew", () => {
    spec
      .given(acmeDomain)
      .when(add("acme.example", ids.acmeSales, at(7 * DAY - 1)))
      .expectRefusal("CONFLICT", /already registered/);
    const { drafts } = spec
      .given(acmeDomain)
      .when(add("acme.example", ids.acmeSales, at(7 * DAY)))
      .expectEvents([
        { type: "DomainRemoved", schemaVersion: 1, data: { domainId: ids.domain, domain: "acme.example", reason: "expired" } },
        expect.objectContaining({ type: "DomainAdded" }),
      ]);
    expect(filed(drafts)).toEqual([
      { ...acmeAt, aggregateId: ids.domain, aggregateVersion: 2 },
      { tenantId: ids.acme, workspaceId: ids.acmeSales, aggregateId: ids.newDomain, aggregateVersion: 1 },
    ]);
  });

  it("a verified claim never lapses", () => {
    spec
      .given([...acmeDomain, domainVerified()])
      .when(add("acme.example", ids.acmeSales, at(365 * DAY)))
      .expectRefusal("CONFLICT", /already registered$/);
  });

  it("lapsed claims do not count towards the workspace's limit", () => {
    const full = Array.from({ length: MAX_DOMAINS_PER_WORKSPACE }, (_, i) =>
      domainAdded(`d${i}.example`, `01900000-0000-7000-8000-${String(i).padStart(12, "0")}`),
    );
    spec
      .given(full)
      .when(add("beta.example", ids.acmeMain, at(8 * DAY)))
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
  const check = (status: "pending" | "verified", ref = "acme.example", caller = acmeTenant, when = clock): DomainCommand => ({
    type: "CheckDomain",
    caller,
    ref,
    checked: { status, records: records("acme.example", status) },
    ...when,
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

describe("CheckDomain between tenants", () => {
  const check = (caller = globexTenant, ref = "acme.example", when = clock): DomainCommand => ({
    type: "CheckDomain",
    caller,
    ref,
    checked: { status: "verified", records: records("acme.example", "verified") },
    ...when,
  });

  it("a squatter's claim verifies like any other while nobody owns the name", () => {
    spec
      .given(squatted)
      .when(check())
      .expectEvents([expect.objectContaining({ type: "DomainChecked", data: expect.objectContaining({ domainId: globexDomain, status: "verified" }) })]);
  });

  it("once another tenant's claim verified, the other claims are gone: 404", () => {
    spec
      .given([...squatted, domainVerified()])
      .when(check())
      .expectRefusal("NOT_FOUND");
    spec
      .given([...squatted, domainVerified()])
      .when(check(acmeTenant))
      .expectEvents([]);
  });

  it("a claim older than the TTL is gone: 404 to its own tenant", () => {
    spec
      .given(squatted)
      .when(check(globexTenant, "acme.example", at(7 * DAY)))
      .expectRefusal("NOT_FOUND");
  });

  it("the first proof folded owns the name; a later one does not take it over", () => {
    spec
      .given([...squatted, domainVerified(), domainVerified(globexDomain)])
      .when(check())
      .expectRefusal("NOT_FOUND");
  });
});

describe("ReleaseDomainClaims", () => {
  const release = (tenantId = ids.globex, when = clock): DomainCommand => ({ type: "ReleaseDomainClaims", tenantId, domain: "acme.example", ...when });

  it("releases the tenant's claim of a name another tenant verified, on the claim's own aggregate", () => {
    const { drafts } = spec
      .given([...squatted, domainVerified()])
      .when(release())
      .expectEvents([{ type: "DomainRemoved", schemaVersion: 1, data: { domainId: globexDomain, domain: "acme.example", reason: "verified_elsewhere" } }]);
    expect(filed(drafts)).toEqual([{ ...globexAt, aggregateId: globexDomain, aggregateVersion: 2 }]);
  });

  it("releases a claim past the TTL as expired", () => {
    spec
      .given(squatted)
      .when(release(ids.globex, at(8 * DAY)))
      .expectEvents([{ type: "DomainRemoved", schemaVersion: 1, data: { domainId: globexDomain, domain: "acme.example", reason: "expired" } }]);
  });

  it("leaves claims that still hold, and never the owner's", () => {
    spec.given(squatted).when(release()).expectEvents([]);
    spec
      .given([...squatted, domainVerified()])
      .when(release(ids.acme, at(30 * DAY)))
      .expectEvents([]);
    spec
      .given([...squatted, domainVerified(), domainRemoved("acme.example", globexDomain)])
      .when(release())
      .expectEvents([]);
  });

  /** globex's claim verified (so it owns the name), then its owner row gone, as a rebuilt read model may show it for a while. */
  const unowned = () => {
    const state = [...squatted, domainVerified(globexDomain)].reduce(evolve, initial());
    expect(state.domainClaims).toEqual({ "acme.example": globexDomain });
    return { ...state, domainClaims: {} };
  };

  it("never expires a verified claim that owns nothing: its private key would go for good", () => {
    const late = at(30 * DAY);
    const state = unowned();
    expect(lapsed(state, state.domains[globexDomain]!, late)).toBeNull();
    expect(decide(release(ids.globex, late), state)).toEqual([]);
    // An unverified claim of the same age, with no owner, has expired; younger, it holds.
    expect(lapsed(state, state.domains[ids.domain]!, late)).toBe("expired");
    expect(lapsed(state, state.domains[ids.domain]!, at(DAY))).toBeNull();
    expect(decide(release(ids.acme, late), state).map((d) => d.event)).toEqual([
      { type: "DomainRemoved", schemaVersion: 1, data: { domainId: ids.domain, domain: "acme.example", reason: "expired" } },
    ]);
  });

  it("nor one proven once whose later check failed (pending now): a proof is not undone", () => {
    const late = at(30 * DAY);
    const state = unowned();
    const d = state.domains[globexDomain]!;
    const proven = { ...state, domains: { ...state.domains, [globexDomain]: { ...d, status: "pending" as const, proven: true } } };
    expect(lapsed(proven, proven.domains[globexDomain]!, late)).toBeNull();
    expect(decide(release(ids.globex, late), proven)).toEqual([]);
    const never = { ...state, domains: { ...state.domains, [globexDomain]: { ...d, status: "pending" as const, proven: false } } };
    expect(lapsed(never, never.domains[globexDomain]!, late)).toBe("expired");
  });
});

describe("RemoveDomain", () => {
  const remove = (caller = acmeTenant, ref = "acme.example"): DomainCommand => ({ type: "RemoveDomain", caller, ref, ...clock });

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
