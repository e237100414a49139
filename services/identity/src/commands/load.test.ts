import { describe, expect, it } from "vitest";
import { NO_WORKSPACE } from "../db/schema.ts";
import type { KeyRow, WorkspaceRow } from "../read/queries.ts";
import { ids, keyIssued, keyRevoked, material, workspaceCreated, workspaceDeleted } from "./decisions/fixtures.ts";
import { evolve, initial } from "./decisions/state.ts";
import { stateOf } from "./load.ts";

/**
 * Decisions are tested against state folded from events and run against state read from
 * rows: the two must agree, or a test proves nothing about the service.
 */
describe("load reads the state evolve folds", () => {
  const at = new Date("2026-11-30T12:00:00Z");
  const workspace = (workspace_id: string, slug: string, is_default: boolean, deleted_at: Date | null): WorkspaceRow => ({
    workspace_id,
    tenant_id: ids.acme,
    name: slug,
    slug,
    is_default,
    inbox_count: 0,
    domain_count: 0,
    created_at: at,
    deleted_at,
  });
  const key = (key_id: string, plaintext: string, over: Partial<KeyRow>): KeyRow => ({
    workspace_id: ids.acmeSales,
    key_id,
    tenant_id: ids.acme,
    kind: "workspace",
    name: null,
    prefix: plaintext.slice(0, 9),
    key_hash: material(key_id, plaintext).keyHash,
    inbox_id: null,
    created_at: at,
    revoked_at: null,
    ...over,
  });

  it("for workspaces, live and deleted, and keys of a workspace, of an inbox, of a tenant, revoked or not", () => {
    const rows = stateOf(
      [workspace(ids.acmeDefault, "default", true, null), workspace(ids.acmeSales, "sales", false, at)],
      [
        key(ids.salesKey, "wk_sales_key", { revoked_at: at }),
        key(ids.inboxKey, "ak_inbox_key", { kind: "inbox", inbox_id: ids.inbox }),
        key(ids.tenantKey, "tk_tenant_key", { kind: "tenant", workspace_id: NO_WORKSPACE }),
        key(ids.operatorKey, "sa_operator_key", { kind: "super_admin", workspace_id: NO_WORKSPACE, tenant_id: null }),
      ],
    );
    const folded = [
      workspaceCreated(ids.acme, ids.acmeDefault, "default", true),
      workspaceCreated(ids.acme, ids.acmeSales, "sales"),
      keyIssued(material(ids.salesKey, "wk_sales_key"), "workspace", { tenantId: ids.acme, workspaceId: ids.acmeSales }, null),
      keyIssued(material(ids.inboxKey, "ak_inbox_key"), "inbox", { tenantId: ids.acme, workspaceId: ids.acmeSales, inboxId: ids.inbox }, null),
      keyIssued(material(ids.tenantKey, "tk_tenant_key"), "tenant", { tenantId: ids.acme, workspaceId: null }, null),
      keyIssued(material(ids.operatorKey, "sa_operator_key"), "super_admin", { tenantId: null, workspaceId: null }, null),
      keyRevoked(ids.salesKey),
      workspaceDeleted(ids.acme, ids.acmeSales),
    ].reduce(evolve, initial());
    expect(rows).toEqual(folded);
  });
});
