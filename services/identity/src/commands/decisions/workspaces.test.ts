import { describe, expect, it } from "vitest";
import { deciderSpec } from "@mam/testing/decider-spec.ts";
import { filed, ids, keyIssued, keyRevoked, material, tenantKeyOf, twoTenants, workspaceCreated, workspaceDeleted } from "./fixtures.ts";
import { evolve, initial } from "./state.ts";
import { decideWorkspace, type CreateWorkspace, type DeleteWorkspace } from "./workspaces.ts";

const spec = deciderSpec({ initial, evolve, decide: decideWorkspace });

describe("CreateWorkspace", () => {
  const create = (name: string, slug: string | null = null): CreateWorkspace => ({
    type: "CreateWorkspace",
    tenantId: ids.acme,
    workspaceId: ids.newWorkspace,
    name,
    slug,
  });
  const created = (name: string, slug: string) => workspaceCreated(ids.acme, ids.newWorkspace, slug, false, name);

  it("derives the slug from the name", () => {
    const { drafts } = spec
      .given(twoTenants)
      .when(create("Acme Corp"))
      .expectEvents([created("Acme Corp", "acme-corp")]);
    expect(filed(drafts)).toEqual([{ tenantId: ids.acme, workspaceId: ids.newWorkspace, aggregateId: ids.newWorkspace, aggregateVersion: 1 }]);
  });

  it("numbers a derived slug past the ones taken in the tenant", () => {
    const taken = [
      workspaceCreated(ids.acme, "01900000-0000-7000-8000-0000000000e1", "acme-corp"),
      workspaceCreated(ids.acme, "01900000-0000-7000-8000-0000000000e2", "acme-corp-2"),
    ];
    spec
      .given([...twoTenants, ...taken])
      .when(create("Acme Corp"))
      .expectEvents([created("Acme Corp", "acme-corp-3")]);
  });

  it("frees a deleted workspace's slug", () => {
    spec
      .given([...twoTenants, workspaceDeleted(ids.acme, ids.acmeSales)])
      .when(create("Sales"))
      .expectEvents([created("Sales", "sales")]);
  });

  it("ignores other tenants' slugs", () => {
    const elsewhere = workspaceCreated(ids.other, "01900000-0000-7000-8000-0000000000e3", "acme-corp");
    spec
      .given([...twoTenants, elsewhere])
      .when(create("Acme Corp"))
      .expectEvents([created("Acme Corp", "acme-corp")]);
  });

  it("takes a free explicit slug as asked", () => {
    spec
      .given(twoTenants)
      .when(create("Acme Corp", "acme"))
      .expectEvents([created("Acme Corp", "acme")]);
  });

  it("refuses an explicit slug that is taken, rather than numbering it", () => {
    spec
      .given(twoTenants)
      .when(create("Anything", "sales"))
      .expectRefusal("CONFLICT", /^A workspace with slug "sales" already exists$/);
  });
});

describe("DeleteWorkspace", () => {
  const del = (workspaceId: string, claims = tenantKeyOf(ids.acme)): DeleteWorkspace => ({ type: "DeleteWorkspace", claims, workspaceId });
  const salesKeys = [
    keyIssued(material(ids.salesKey, "wk_sales1"), "workspace", { tenantId: ids.acme, workspaceId: ids.acmeSales }, null),
    keyIssued(material(ids.salesKey2, "wk_sales2"), "workspace", { tenantId: ids.acme, workspaceId: ids.acmeSales }, "ci"),
    keyIssued(material(ids.inboxKey, "ak_sales"), "inbox", { tenantId: ids.acme, workspaceId: ids.acmeSales, inboxId: ids.inbox }, "Inbox key"),
    keyIssued(material(ids.defaultKey, "wk_default"), "workspace", { tenantId: ids.acme, workspaceId: ids.acmeDefault }, null),
  ];

  it("deletes the workspace and revokes its live keys, and only those", () => {
    const { drafts } = spec
      .given([...twoTenants, ...salesKeys, keyRevoked(ids.salesKey)])
      .when(del(ids.acmeSales))
      .expectEvents([workspaceDeleted(ids.acme, ids.acmeSales), keyRevoked(ids.salesKey2, "workspace_deleted"), keyRevoked(ids.inboxKey, "workspace_deleted")]);
    // The read model finds a revoked key's row by the draft's workspace.
    expect(filed(drafts).map((d) => [d.workspaceId, d.aggregateId, d.aggregateVersion])).toEqual([
      [ids.acmeSales, ids.acmeSales, 2],
      [ids.acmeSales, ids.salesKey2, 2],
      [ids.acmeSales, ids.inboxKey, 2],
    ]);
  });

  it("deletes a workspace without keys with one event", () => {
    spec
      .given(twoTenants)
      .when(del(ids.acmeSales))
      .expectEvents([workspaceDeleted(ids.acme, ids.acmeSales)]);
  });

  it("refuses to delete the default workspace", () => {
    spec
      .given([...twoTenants, ...salesKeys])
      .when(del(ids.acmeDefault))
      .expectRefusal("CONFLICT", /default workspace cannot be deleted/);
  });

  it.each([
    ["a deleted workspace", [workspaceDeleted(ids.acme, ids.acmeSales)], ids.acmeSales],
    ["a workspace that never was", [], ids.newWorkspace],
    ["another tenant's workspace", [], ids.otherDefault],
  ])("answers %s as not found", (_what, more, workspaceId) => {
    spec
      .given([...twoTenants, ...more])
      .when(del(workspaceId))
      .expectRefusal("NOT_FOUND", /^Workspace not found$/);
  });
});
