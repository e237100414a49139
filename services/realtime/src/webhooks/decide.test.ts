import { describe, expect, it } from "vitest";
import type { RealtimeEvent } from "@mam/contracts/realtime-events.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { deciderSpec } from "@mam/testing/decider-spec.ts";
import { decide, evolve, initial, type WebhookCommand } from "./decide.ts";

const ids = {
  tenant: "01900000-0000-7000-8000-000000000001",
  main: "01900000-0000-7000-8000-0000000000a1",
  other: "01900000-0000-7000-8000-0000000000a2",
  tenantHook: "01900000-0000-7000-8000-0000000000b1",
  mainHook: "01900000-0000-7000-8000-0000000000b2",
  otherHook: "01900000-0000-7000-8000-0000000000b3",
  newHook: "01900000-0000-7000-8000-0000000000b9",
};
const claims = (kind: ScopeClaims["kind"], workspaces: ScopeClaims["workspaces"], inboxId: string | null = null): ScopeClaims => ({
  v: 1,
  aud: ["realtime"],
  kid: "01900000-0000-7000-8000-0000000000f1",
  kind,
  tenantId: kind === "super_admin" ? null : ids.tenant,
  workspaces,
  inboxId,
  iat: 0,
  exp: 60,
});
const tk = claims("tenant", "*");
const wkMain = claims("workspace", [ids.main]);
const wkOther = claims("workspace", [ids.other]);
const ak = claims("inbox", [ids.main], "01900000-0000-7000-8000-0000000000c1");
const sa = claims("super_admin", []);

const created = (webhookId: string, workspaceId: string | null): RealtimeEvent => ({
  type: "WebhookCreated",
  schemaVersion: 1,
  data: { webhookId, url: "https://hooks.example.com/a", events: ["message.received"], isActive: true, workspaceId },
});
const hooks = [created(ids.tenantHook, null), created(ids.mainHook, ids.main), created(ids.otherHook, ids.other)];

const spec = deciderSpec({ initial, evolve, decide });
const create = (caller: ScopeClaims, max = 10): WebhookCommand => ({
  type: "CreateWebhook",
  caller,
  webhookId: ids.newHook,
  url: "https://hooks.example.com/new",
  events: ["message.received", "message.bounced"],
  isActive: true,
  max,
});

describe("CreateWebhook", () => {
  it("files a tk_ key's webhook for the whole tenant, a wk_ key's in its workspace", () => {
    const byTenant = spec
      .given(hooks)
      .when(create(tk))
      .expectEvents([
        {
          type: "WebhookCreated",
          schemaVersion: 1,
          data: {
            webhookId: ids.newHook,
            url: "https://hooks.example.com/new",
            events: ["message.received", "message.bounced"],
            isActive: true,
            workspaceId: null,
          },
        },
      ]);
    expect(byTenant.drafts[0]).toMatchObject({ tenantId: ids.tenant, workspaceId: null, aggregateId: ids.newHook, aggregateVersion: 1 });
    const byWorkspace = spec.given(hooks).when(create(wkMain)).outcome;
    expect(byWorkspace.drafts[0]).toMatchObject({ workspaceId: ids.main, event: { data: { workspaceId: ids.main } } });
  });

  it("refuses the one past the tenant's cap with the limit, its usage and its maximum; a deleted one frees its place", () => {
    const refused = spec
      .given(hooks)
      .when(create(wkMain, 3))
      .expectRefusal("PLAN_LIMIT_REACHED", /at most 3 webhooks/);
    expect(refused.error!.toBody()).toMatchObject({ limit: "webhooks", usage: 3, max: 3 });
    const deleted: RealtimeEvent = { type: "WebhookDeleted", schemaVersion: 1, data: { webhookId: ids.otherHook } };
    spec
      .given([...hooks, deleted])
      .when(create(wkMain, 3))
      .expectEvents([expect.objectContaining({ type: "WebhookCreated" })]);
  });

  it("is refused to inbox and operator keys (403)", () => {
    spec.given(hooks).when(create(ak)).expectRefusal("FORBIDDEN");
    spec.given(hooks).when(create(sa)).expectRefusal("FORBIDDEN");
  });

  it("is refused in a workspace identity deleted (404), as anything there", () => {
    const ended = deciderSpec({ initial: () => ({ ...initial(), ended: { [ids.main]: true as const } }), evolve, decide });
    ended
      .given([])
      .when(create(wkMain))
      .expectRefusal("NOT_FOUND", /Workspace/);
    ended
      .given([])
      .when(create(tk))
      .expectEvents([expect.objectContaining({ type: "WebhookCreated" })]);
  });
});

describe("UpdateWebhook and DeleteWebhook", () => {
  const update = (caller: ScopeClaims, webhookId: string, change: Partial<Extract<WebhookCommand, { type: "UpdateWebhook" }>>): WebhookCommand => ({
    type: "UpdateWebhook",
    caller,
    webhookId,
    ...change,
  });
  const del = (caller: ScopeClaims, webhookId: string): WebhookCommand => ({ type: "DeleteWebhook", caller, webhookId });

  it("says only what changes, at the next version; a change to nothing is no event", () => {
    const { drafts } = spec
      .given(hooks)
      .when(update(wkMain, ids.mainHook, { url: "https://hooks.example.com/a", isActive: false, events: ["message.sent"] }))
      .expectEvents([{ type: "WebhookUpdated", schemaVersion: 1, data: { webhookId: ids.mainHook, isActive: false, events: ["message.sent"] } }]);
    expect(drafts[0]).toMatchObject({ workspaceId: ids.main, aggregateVersion: 2 });
    spec
      .given(hooks)
      .when(update(tk, ids.mainHook, { url: "https://hooks.example.com/a", isActive: true }))
      .expectEvents([]);
  });

  it("lets a tk_ key manage every webhook of its tenant, a wk_ key only its workspace's (the rest is 404)", () => {
    for (const id of [ids.tenantHook, ids.mainHook, ids.otherHook]) {
      spec
        .given(hooks)
        .when(del(tk, id))
        .expectEvents([{ type: "WebhookDeleted", schemaVersion: 1, data: { webhookId: id } }]);
    }
    spec
      .given(hooks)
      .when(del(wkMain, ids.mainHook))
      .expectEvents([expect.objectContaining({ type: "WebhookDeleted" })]);
    for (const id of [ids.tenantHook, ids.otherHook, ids.newHook]) {
      spec.given(hooks).when(del(wkMain, id)).expectRefusal("NOT_FOUND");
      spec
        .given(hooks)
        .when(update(wkMain, id, { isActive: false }))
        .expectRefusal("NOT_FOUND");
    }
    spec
      .given(hooks)
      .when(update(wkOther, ids.mainHook, { isActive: false }))
      .expectRefusal("NOT_FOUND");
    spec.given(hooks).when(del(ak, ids.mainHook)).expectRefusal("FORBIDDEN");
  });

  it("finds a deleted webhook no more", () => {
    const deleted: RealtimeEvent = { type: "WebhookDeleted", schemaVersion: 1, data: { webhookId: ids.mainHook } };
    spec
      .given([...hooks, deleted])
      .when(del(tk, ids.mainHook))
      .expectRefusal("NOT_FOUND");
  });
});

describe("EndWorkspace", () => {
  it("deletes the workspace's webhooks, saying why, and leaves the tenant's and other workspaces' alone", () => {
    const { drafts } = spec
      .given(hooks)
      .when({ type: "EndWorkspace", tenantId: ids.tenant, workspaceId: ids.main })
      .expectEvents([{ type: "WebhookDeleted", schemaVersion: 1, data: { webhookId: ids.mainHook, reason: "workspace_deleted" } }]);
    expect(drafts[0]).toMatchObject({ tenantId: ids.tenant, workspaceId: ids.main, aggregateVersion: 2 });
    spec
      .given([created(ids.tenantHook, null)])
      .when({ type: "EndWorkspace", tenantId: ids.tenant, workspaceId: ids.main })
      .expectEvents([]);
  });
});
