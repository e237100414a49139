import { describe, expect, it } from "vitest";
import { PUBLIC_EVENT_TYPES, type FeedEvent } from "@mam/contracts/realtime-feed.ts";
import { uuidv7 } from "@mam/runtime/ids.ts";
import { ceilingOf, decideSubscription, dispatchKeys, eventKeys, matches, type Ceiling, type DirectoryView } from "./scope.ts";

const id = () => uuidv7();
const T = id();
const OTHER_T = id();
const W1 = id();
const W2 = id();
const OTHER_W = id();
const I1 = id();
const I2 = id();
const I3 = id();
const OTHER_I = id();

const dir: DirectoryView = {
  workspaces: new Map([
    [W1, { tenantId: T }],
    [W2, { tenantId: T }],
    [OTHER_W, { tenantId: OTHER_T }],
  ]),
  inboxes: new Map([
    [I1, { tenantId: T, workspaceId: W1 }],
    [I2, { tenantId: T, workspaceId: W1 }],
    [I3, { tenantId: T, workspaceId: W2 }],
    [OTHER_I, { tenantId: OTHER_T, workspaceId: OTHER_W }],
  ]),
};

const tenantKey: Ceiling = { keyId: id(), kind: "tenant", tenantId: T, workspaces: "*", inboxId: null };
const workspaceKey: Ceiling = { keyId: id(), kind: "workspace", tenantId: T, workspaces: [W1], inboxId: null };
const inboxKey: Ceiling = { keyId: id(), kind: "inbox", tenantId: T, workspaces: [W1], inboxId: I1 };
/** A tk_ key on /v1/inboxes/I3/ws. */
const tenantOnInbox: Ceiling = { ...tenantKey, inboxId: I3 };

const event = (o: Partial<FeedEvent>): FeedEvent => ({
  eventId: `evt_${id()}`,
  eventType: "message.received",
  tenantId: T,
  workspaceId: W1,
  inboxId: I1,
  occurredAt: new Date().toISOString(),
  ...o,
});
const sub = (o: object = {}) => ({ type: "subscribe" as const, ...o });

describe("decideSubscription", () => {
  it("gives everything the key sees when the frame names nothing", () => {
    const d = decideSubscription(tenantKey, sub(), dir);
    expect(d.ok && d.subscribed).toEqual({ type: "subscribed", event_types: [...PUBLIC_EVENT_TYPES], inbox_ids: [], workspace_ids: [], pod_ids: [] });
    expect(d.ok && d.resume).toEqual({ tenantId: T });
  });

  it("takes pod_ids as workspace_ids, and their union", () => {
    const d = decideSubscription(tenantKey, sub({ workspace_ids: [W1], pod_ids: [W2, W1] }), dir);
    expect(d.ok && d.subscribed.workspace_ids).toEqual([W1, W2]);
    expect(d.ok && d.subscribed.pod_ids).toEqual([W1, W2]);
  });

  it.each([
    ["a wk_ key naming another workspace of its tenant", workspaceKey, sub({ workspace_ids: [W2] })],
    ["a wk_ key naming an inbox of another workspace", workspaceKey, sub({ inbox_ids: [I3] })],
    ["an ak_ key naming another inbox of its workspace", inboxKey, sub({ inbox_ids: [I2] })],
    ["an ak_ key naming another workspace", inboxKey, sub({ pod_ids: [W2] })],
    ["a tk_ key naming another tenant's workspace", tenantKey, sub({ workspace_ids: [OTHER_W] })],
    ["a tk_ key naming another tenant's inbox", tenantKey, sub({ inbox_ids: [OTHER_I] })],
    ["an id the directory does not know", tenantKey, sub({ inbox_ids: [id()] })],
    ["an allowed id beside a refused one", tenantKey, sub({ inbox_ids: [I1, OTHER_I] })],
    ["the per-inbox path widened to another inbox", tenantOnInbox, sub({ inbox_ids: [I1] })],
    ["the per-inbox path with a workspace not its inbox's", tenantOnInbox, sub({ workspace_ids: [W1] })],
  ])("refuses %s", (_what, c, frame) => {
    expect(decideSubscription(c, frame, dir)).toEqual({ ok: false });
  });

  it("refuses the per-inbox path once its inbox is gone from the directory", () => {
    expect(decideSubscription(tenantOnInbox, sub(), { ...dir, inboxes: new Map() })).toEqual({ ok: false });
  });

  it("keeps an ak_ key to its inbox without asking the directory, and resumes on that inbox's subject", () => {
    const d = decideSubscription(inboxKey, sub({ event_types: ["message.sent"] }), { inboxes: new Map(), workspaces: new Map() });
    expect(d.ok && d.subscribed.inbox_ids).toEqual([I1]);
    expect(d.ok && d.resume).toEqual({ tenantId: T, workspaceId: W1, inboxId: I1 });
  });

  it("narrows the per-inbox path to its inbox, in its workspace", () => {
    const d = decideSubscription(tenantOnInbox, sub({ workspace_ids: [W2] }), dir);
    expect(d.ok && d.filters.inboxes).toEqual(new Set([I3]));
    expect(d.ok && d.workspaceOfInbox).toBe(W2);
  });
});

describe("matches", () => {
  const filtersOf = (c: Ceiling, o: object = {}) => {
    const d = decideSubscription(c, sub(o), dir);
    if (!d.ok) throw new Error("refused");
    return d.filters;
  };

  it("never sends a domain event (no inbox) to an inbox's connection, and sends it to a workspace's", () => {
    const domain = event({ eventType: "domain.verified", inboxId: null });
    expect(matches(inboxKey, filtersOf(inboxKey), domain)).toBe(false);
    expect(matches(workspaceKey, filtersOf(workspaceKey), domain)).toBe(true);
    expect(matches(tenantKey, filtersOf(tenantKey, { inbox_ids: [I1] }), domain)).toBe(false);
  });

  it("holds every event to the ceiling, whatever the filters", () => {
    const f = filtersOf(tenantKey);
    expect(matches(tenantKey, f, event({ tenantId: OTHER_T, workspaceId: OTHER_W, inboxId: OTHER_I }))).toBe(false);
    expect(matches(workspaceKey, filtersOf(workspaceKey), event({ workspaceId: W2, inboxId: I3 }))).toBe(false);
    expect(matches(inboxKey, filtersOf(inboxKey), event({ inboxId: I2 }))).toBe(false);
  });

  it("applies every filter given (types, workspaces, inboxes together)", () => {
    const f = filtersOf(tenantKey, { event_types: ["message.sent"], workspace_ids: [W1], inbox_ids: [I1] });
    expect(matches(tenantKey, f, event({ eventType: "message.sent" }))).toBe(true);
    expect(matches(tenantKey, f, event({ eventType: "message.received" }))).toBe(false);
    expect(matches(tenantKey, f, event({ eventType: "message.sent", inboxId: I2 }))).toBe(false);
  });
});

describe("dispatch keys", () => {
  it("file a connection under one kind of key, so an event reaches it once", () => {
    const cases: [Ceiling, object][] = [
      [tenantKey, {}],
      [tenantKey, { workspace_ids: [W1, W2] }],
      [workspaceKey, {}],
      [inboxKey, {}],
      [tenantKey, { inbox_ids: [I1, I2] }],
    ];
    const e = event({});
    for (const [c, o] of cases) {
      const d = decideSubscription(c, sub(o), dir);
      if (!d.ok) throw new Error("refused");
      const hits = dispatchKeys(c, d.filters).filter((k) => eventKeys(e).includes(k));
      expect(hits).toHaveLength(1);
    }
  });
});

describe("ceilingOf", () => {
  const claims = { v: 1 as const, aud: ["realtime"] as [string], kid: id(), iat: 0, exp: 60 };
  it("refuses the operator's token, and an ak_ key on another inbox's path", () => {
    expect(ceilingOf({ ...claims, kind: "super_admin", tenantId: null, workspaces: [], inboxId: null }, null)).toBeUndefined();
    expect(ceilingOf({ ...claims, kind: "inbox", tenantId: T, workspaces: [W1], inboxId: I1 }, I2)).toBeUndefined();
    expect(ceilingOf({ ...claims, kind: "tenant", tenantId: T, workspaces: "*", inboxId: null }, I3)?.inboxId).toBe(I3);
  });
});
