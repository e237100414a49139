import { describe, expect, it } from "vitest";
import { deciderSpec } from "@mam/testing/decider-spec.ts";
import { filed, ids, keyIssued, material, tenantCreated, twoTenants, workspaceCreated } from "./fixtures.ts";
import { evolve, initial } from "./state.ts";
import { decideTenant, type CreateTenant } from "./tenants.ts";

const spec = deciderSpec({ initial, evolve, decide: decideTenant });
const key = material(ids.newKey, "tk_new");
const create: CreateTenant = { type: "CreateTenant", tenantId: ids.acme, defaultWorkspaceId: ids.acmeDefault, name: "Acme", key };

describe("CreateTenant", () => {
  it("creates the tenant, its Default workspace and its master key", () => {
    spec
      .given([])
      .when(create)
      .expectEvents([
        tenantCreated(ids.acme, ids.acmeDefault, "Acme"),
        workspaceCreated(ids.acme, ids.acmeDefault, "default", true, "Default"),
        keyIssued(key, "tenant", { tenantId: ids.acme, workspaceId: null }, "Tenant master key"),
      ]);
  });

  it("files the tenant and its key under no workspace, the Default workspace under itself", () => {
    const { drafts } = spec.given([]).when(create).outcome;
    expect(filed(drafts).map((d) => [d.tenantId, d.workspaceId, d.aggregateId, d.aggregateVersion])).toEqual([
      [ids.acme, null, ids.acme, 1],
      [ids.acme, ids.acmeDefault, ids.acmeDefault, 1],
      [ids.acme, null, ids.newKey, 1],
    ]);
  });

  it("is the same whatever other tenants exist", () => {
    const fresh: CreateTenant = { ...create, tenantId: "01900000-0000-7000-8000-00000000a0ff", defaultWorkspaceId: ids.newWorkspace };
    expect(spec.given(twoTenants).when(fresh).outcome.events).toEqual(spec.given([]).when(fresh).outcome.events);
  });
});
