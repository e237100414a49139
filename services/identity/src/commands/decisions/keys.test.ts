import { describe, expect, it } from "vitest";
import { deciderSpec } from "@mam/testing/decider-spec.ts";
import {
  decideKey,
  type DiscardInboxKey,
  type IssueInboxKey,
  type IssueWorkspaceKey,
  type ReissueTenantKey,
  type RevokeInboxKeys,
  type RevokeTenantKey,
  type RevokeWorkspaceKey,
  type RotateTenantKey,
} from "./keys.ts";
import { filed, ids, keyIssued, keyRevoked, material, operatorKey, tenantKeyOf, twoTenants, workspaceDeleted, workspaceKeyOf } from "./fixtures.ts";
import { evolve, initial } from "./state.ts";

const spec = deciderSpec({ initial, evolve, decide: decideKey });
const acmeTk = tenantKeyOf(ids.acme);
const fresh = material(ids.newKey, "wk_fresh");

describe("IssueWorkspaceKey", () => {
  const issue = (workspaceId: string, name: string | null = "ci"): IssueWorkspaceKey => ({
    type: "IssueWorkspaceKey",
    claims: acmeTk,
    workspaceId,
    name,
    key: fresh,
  });

  it("issues a wk_ key in the workspace, recording its hash", () => {
    const { drafts } = spec
      .given(twoTenants)
      .when(issue(ids.acmeSales))
      .expectEvents([keyIssued(fresh, "workspace", { tenantId: ids.acme, workspaceId: ids.acmeSales }, "ci")]);
    expect(filed(drafts)).toEqual([{ tenantId: ids.acme, workspaceId: ids.acmeSales, aggregateId: ids.newKey, aggregateVersion: 1 }]);
  });

  it("issues an unnamed key", () => {
    spec
      .given(twoTenants)
      .when(issue(ids.acmeDefault, null))
      .expectEvents([keyIssued(fresh, "workspace", { tenantId: ids.acme, workspaceId: ids.acmeDefault }, null)]);
  });

  it.each([
    ["another tenant's workspace", [], ids.otherDefault],
    ["a deleted workspace", [workspaceDeleted(ids.acme, ids.acmeSales)], ids.acmeSales],
    ["a workspace that never was", [], ids.newWorkspace],
  ])("answers %s as not found", (_what, more, workspaceId) => {
    spec
      .given([...twoTenants, ...more])
      .when(issue(workspaceId))
      .expectRefusal("NOT_FOUND", /^Workspace not found$/);
  });
});

describe("RevokeWorkspaceKey", () => {
  const salesKey = keyIssued(material(ids.salesKey, "wk_sales"), "workspace", { tenantId: ids.acme, workspaceId: ids.acmeSales }, null);
  const revoke = (workspaceId: string, keyId: string = ids.salesKey): RevokeWorkspaceKey => ({
    type: "RevokeWorkspaceKey",
    claims: acmeTk,
    workspaceId,
    keyId,
  });

  it("revokes the key, filed under its workspace", () => {
    const { drafts } = spec
      .given([...twoTenants, salesKey])
      .when(revoke(ids.acmeSales))
      .expectEvents([keyRevoked(ids.salesKey, "revoked")]);
    expect(filed(drafts)).toEqual([{ tenantId: ids.acme, workspaceId: ids.acmeSales, aggregateId: ids.salesKey, aggregateVersion: 2 }]);
  });

  it("records nothing for a key revoked already (the answer is the same)", () => {
    spec
      .given([...twoTenants, salesKey, keyRevoked(ids.salesKey)])
      .when(revoke(ids.acmeSales))
      .expectEvents([]);
  });

  it("answers a key of another workspace, or none, as a key not found", () => {
    spec
      .given([...twoTenants, salesKey])
      .when(revoke(ids.acmeDefault))
      .expectRefusal("NOT_FOUND", /^Key not found$/);
    spec
      .given([...twoTenants, salesKey])
      .when(revoke(ids.acmeSales, ids.newKey))
      .expectRefusal("NOT_FOUND", /^Key not found$/);
  });

  it("answers a workspace the caller does not see, or a deleted one, as a workspace not found", () => {
    spec
      .given([...twoTenants, salesKey])
      .when({ ...revoke(ids.acmeSales), claims: tenantKeyOf(ids.other) })
      .expectRefusal("NOT_FOUND", /^Workspace not found$/);
    spec
      .given([...twoTenants, salesKey, workspaceDeleted(ids.acme, ids.acmeSales)])
      .when(revoke(ids.acmeSales))
      .expectRefusal("NOT_FOUND", /^Workspace not found$/);
  });
});

describe("IssueInboxKey", () => {
  const ak = material(ids.newKey, "ak_fresh");
  const issue = (claims = acmeTk, workspaceId: string = ids.acmeSales): IssueInboxKey => ({
    type: "IssueInboxKey",
    claims,
    workspaceId,
    inboxId: ids.inbox,
    key: ak,
  });
  const issued = keyIssued(ak, "inbox", { tenantId: ids.acme, workspaceId: ids.acmeSales, inboxId: ids.inbox }, "Inbox key");

  it("issues an ak_ key for the inbox, for the tenant's key", () => {
    spec.given(twoTenants).when(issue()).expectEvents([issued]);
  });

  it("issues it for a key of the same workspace", () => {
    spec
      .given(twoTenants)
      .when(issue(workspaceKeyOf(ids.acme, ids.acmeSales)))
      .expectEvents([issued]);
  });

  it("answers a workspace key's request for another workspace as not found", () => {
    spec
      .given(twoTenants)
      .when(issue(workspaceKeyOf(ids.acme, ids.acmeDefault)))
      .expectRefusal("NOT_FOUND", /^Workspace not found$/);
  });

  it("refuses a deleted workspace", () => {
    spec
      .given([...twoTenants, workspaceDeleted(ids.acme, ids.acmeSales)])
      .when(issue())
      .expectRefusal("NOT_FOUND");
  });
});

describe("RevokeInboxKeys", () => {
  const revoke: RevokeInboxKeys = { type: "RevokeInboxKeys", workspaceId: ids.acmeSales, inboxId: ids.inbox };
  const inboxKeys = [
    keyIssued(material(ids.inboxKey, "ak_one"), "inbox", { tenantId: ids.acme, workspaceId: ids.acmeSales, inboxId: ids.inbox }, "Inbox key"),
    keyIssued(material(ids.salesKey2, "ak_two"), "inbox", { tenantId: ids.acme, workspaceId: ids.acmeSales, inboxId: ids.inbox }, "Inbox key"),
    keyIssued(material(ids.salesKey, "ak_other"), "inbox", { tenantId: ids.acme, workspaceId: ids.acmeSales, inboxId: ids.otherInbox }, "Inbox key"),
  ];

  it("revokes the inbox's live keys, and no other inbox's", () => {
    const { drafts } = spec
      .given([...twoTenants, ...inboxKeys])
      .when(revoke)
      .expectEvents([keyRevoked(ids.inboxKey), keyRevoked(ids.salesKey2)]);
    expect(filed(drafts).map((d) => d.workspaceId)).toEqual([ids.acmeSales, ids.acmeSales]);
  });

  it("records nothing when decided again (a redelivered InboxDeleted)", () => {
    spec
      .given([...twoTenants, ...inboxKeys, keyRevoked(ids.inboxKey), keyRevoked(ids.salesKey2)])
      .when(revoke)
      .expectEvents([]);
  });
});

describe("DiscardInboxKey", () => {
  const unused = keyIssued(material(ids.inboxKey, "ak_unused"), "inbox", { tenantId: ids.acme, workspaceId: ids.acmeSales, inboxId: ids.inbox }, "Inbox key");
  const salesWk = keyIssued(material(ids.salesKey, "wk_sales"), "workspace", { tenantId: ids.acme, workspaceId: ids.acmeSales }, null);
  const discard = (keyId: string, claims = workspaceKeyOf(ids.acme, ids.acmeSales)): DiscardInboxKey => ({
    type: "DiscardInboxKey",
    claims,
    workspaceId: ids.acmeSales,
    keyId,
  });

  it("revokes an inbox key of the caller's workspace, once", () => {
    spec
      .given([...twoTenants, unused])
      .when(discard(ids.inboxKey))
      .expectEvents([keyRevoked(ids.inboxKey, "revoked")]);
    spec
      .given([...twoTenants, unused, keyRevoked(ids.inboxKey)])
      .when(discard(ids.inboxKey))
      .expectEvents([]);
  });

  it("never touches a workspace key, nor a workspace the caller does not see", () => {
    spec
      .given([...twoTenants, unused, salesWk])
      .when(discard(ids.salesKey))
      .expectRefusal("NOT_FOUND", /^Key not found$/);
    spec
      .given([...twoTenants, unused])
      .when(discard(ids.inboxKey, tenantKeyOf(ids.other)))
      .expectRefusal("NOT_FOUND", /^Workspace not found$/);
  });
});

describe("RotateTenantKey", () => {
  const tk = material(ids.newKey, "tk_fresh");
  const rotate = (claims = acmeTk): RotateTenantKey => ({ type: "RotateTenantKey", claims, key: tk });
  const newTk = keyIssued(tk, "tenant", { tenantId: ids.acme, workspaceId: null }, "Tenant master key");

  it("issues a new tk_ key and revokes the calling one as rotated, both filed under the tenant", () => {
    const { drafts } = spec
      .given(twoTenants)
      .when(rotate())
      .expectEvents([newTk, keyRevoked(ids.tenantKey, "rotated")]);
    expect(filed(drafts)).toEqual([
      { tenantId: ids.acme, workspaceId: null, aggregateId: ids.newKey, aggregateVersion: 1 },
      { tenantId: ids.acme, workspaceId: null, aggregateId: ids.tenantKey, aggregateVersion: 2 },
    ]);
  });

  it("leaves the tenant's other tk_ keys alone", () => {
    const second = keyIssued(material(ids.defaultKey, "tk_second"), "tenant", { tenantId: ids.acme, workspaceId: null }, "Tenant master key");
    spec
      .given([...twoTenants, second])
      .when(rotate())
      .expectEvents([newTk, keyRevoked(ids.tenantKey, "rotated")]);
  });

  it("refuses a key revoked in the meantime (a rotation that lost a race issues nothing)", () => {
    spec
      .given([...twoTenants, keyRevoked(ids.tenantKey, "rotated")])
      .when(rotate())
      .expectRefusal("UNAUTHORIZED", /^Invalid API key$/);
  });

  it("is for tk_ keys only", () => {
    spec
      .given(twoTenants)
      .when(rotate(workspaceKeyOf(ids.acme, ids.acmeSales)))
      .expectRefusal("FORBIDDEN");
    spec.given(twoTenants).when(rotate(operatorKey())).expectRefusal("FORBIDDEN");
  });
});

describe("ReissueTenantKey", () => {
  const tk = material(ids.newKey, "tk_reissued");
  const reissue = (tenantId: string, claims = operatorKey()): ReissueTenantKey => ({ type: "ReissueTenantKey", claims, tenantId, key: tk });
  const second = keyIssued(material(ids.defaultKey, "tk_second"), "tenant", { tenantId: ids.acme, workspaceId: null }, "Tenant master key");
  const salesWk = keyIssued(material(ids.salesKey, "wk_sales"), "workspace", { tenantId: ids.acme, workspaceId: ids.acmeSales }, null);

  it("revokes every live tk_ key of the tenant, and no other key, and issues one new one", () => {
    spec
      .given([...twoTenants, second, salesWk])
      .when(reissue(ids.acme))
      .expectEvents([
        keyIssued(tk, "tenant", { tenantId: ids.acme, workspaceId: null }, "Tenant master key"),
        keyRevoked(ids.tenantKey, "rotated"),
        keyRevoked(ids.defaultKey, "rotated"),
      ]);
  });

  it("issues a key to a tenant left with none", () => {
    spec
      .given([...twoTenants, keyRevoked(ids.tenantKey)])
      .when(reissue(ids.acme))
      .expectEvents([keyIssued(tk, "tenant", { tenantId: ids.acme, workspaceId: null }, "Tenant master key")]);
  });

  it("answers a tenant that never was as not found", () => {
    spec
      .given(twoTenants)
      .when(reissue(ids.newWorkspace))
      .expectRefusal("NOT_FOUND", /^Tenant not found$/);
  });

  it("lets a tk_ key reissue its own tenant's keys, and answers another tenant as not found", () => {
    spec
      .given(twoTenants)
      .when(reissue(ids.acme, acmeTk))
      .expectEvents([keyIssued(tk, "tenant", { tenantId: ids.acme, workspaceId: null }, "Tenant master key"), keyRevoked(ids.tenantKey, "rotated")]);
    spec
      .given(twoTenants)
      .when(reissue(ids.other, acmeTk))
      .expectRefusal("NOT_FOUND", /^Tenant not found$/);
    spec
      .given(twoTenants)
      .when(reissue(ids.acme, workspaceKeyOf(ids.acme, ids.acmeDefault)))
      .expectRefusal("NOT_FOUND", /^Tenant not found$/);
  });
});

describe("RevokeTenantKey", () => {
  const revoke = (tenantId: string, keyId: string, claims = operatorKey()): RevokeTenantKey => ({ type: "RevokeTenantKey", claims, tenantId, keyId });
  const salesWk = keyIssued(material(ids.salesKey, "wk_sales"), "workspace", { tenantId: ids.acme, workspaceId: ids.acmeSales }, null);

  it("revokes the tk_ key, once", () => {
    spec
      .given(twoTenants)
      .when(revoke(ids.acme, ids.tenantKey))
      .expectEvents([keyRevoked(ids.tenantKey, "revoked")]);
    spec
      .given([...twoTenants, keyRevoked(ids.tenantKey)])
      .when(revoke(ids.acme, ids.tenantKey))
      .expectEvents([]);
  });

  it("answers another tenant's key, a workspace key or no key as a key not found", () => {
    spec
      .given(twoTenants)
      .when(revoke(ids.other, ids.tenantKey))
      .expectRefusal("NOT_FOUND", /^Key not found$/);
    spec
      .given([...twoTenants, salesWk])
      .when(revoke(ids.acme, ids.salesKey))
      .expectRefusal("NOT_FOUND", /^Key not found$/);
    spec
      .given(twoTenants)
      .when(revoke(ids.acme, ids.newKey))
      .expectRefusal("NOT_FOUND", /^Key not found$/);
  });

  it("answers an unknown tenant, or another tenant for a tk_ key, as a tenant not found", () => {
    spec
      .given(twoTenants)
      .when(revoke(ids.newWorkspace, ids.tenantKey))
      .expectRefusal("NOT_FOUND", /^Tenant not found$/);
    spec
      .given(twoTenants)
      .when(revoke(ids.other, ids.tenantKey, tenantKeyOf(ids.acme)))
      .expectRefusal("NOT_FOUND", /^Tenant not found$/);
  });
});
