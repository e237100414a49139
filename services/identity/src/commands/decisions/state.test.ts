import { describe, expect, it } from "vitest";
import { ids, keyIssued, keyRevoked, material, tenantCreated, twoTenants, workspaceCreated, workspaceDeleted } from "./fixtures.ts";
import { evolve, initial } from "./state.ts";

const fold = (events: Parameters<typeof evolve>[1][]) => events.reduce(evolve, initial());

describe("evolve: identity's events into the state decisions are made against", () => {
  it("keeps workspaces with their tenant, slug and default flag, and keys with their placement", () => {
    const s = fold(twoTenants);
    expect(s.workspaces.map((w) => [w.tenantId, w.slug, w.isDefault, w.deleted])).toEqual([
      [ids.acme, "default", true, false],
      [ids.acme, "sales", false, false],
      [ids.other, "default", true, false],
    ]);
    expect(s.keys).toEqual([
      {
        keyId: ids.tenantKey,
        kind: "tenant",
        tenantId: ids.acme,
        workspaceId: null,
        inboxId: null,
        keyHash: material(ids.tenantKey, "tk_acme").keyHash,
        revoked: false,
      },
    ]);
  });

  it("marks a deleted workspace and a revoked key, as the read model does", () => {
    const s = fold([...twoTenants, workspaceDeleted(ids.acme, ids.acmeSales), keyRevoked(ids.tenantKey)]);
    expect(s.workspaces.find((w) => w.workspaceId === ids.acmeSales)?.deleted).toBe(true);
    expect(s.keys[0]?.revoked).toBe(true);
  });

  it("changes nothing for a repeated event (a redelivery), even after a later one", () => {
    const issued = keyIssued(material(ids.salesKey, "wk_s"), "workspace", { tenantId: ids.acme, workspaceId: ids.acmeSales }, null);
    const created = workspaceCreated(ids.acme, ids.acmeSales, "sales");
    const once = fold([created, issued, keyRevoked(ids.salesKey), workspaceDeleted(ids.acme, ids.acmeSales)]);
    expect(fold([created, issued, keyRevoked(ids.salesKey), workspaceDeleted(ids.acme, ids.acmeSales), created, issued])).toEqual(once);
  });

  it("keeps a tenant's id, once, and nothing else of it", () => {
    const created = tenantCreated(ids.acme, ids.acmeDefault);
    expect(fold([created, created])).toEqual({ ...initial(), tenants: [{ tenantId: ids.acme }] });
  });
});
