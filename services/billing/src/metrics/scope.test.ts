import { describe, expect, it } from "vitest";
import { AppError } from "@mam/contracts/errors.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { decideScope, type Known } from "./scope.ts";

const T = "00000000-0000-4000-8000-000000000001";
const OTHER_T = "00000000-0000-4000-8000-000000000002";
const W1 = "00000000-0000-4000-8000-000000000011";
const W2 = "00000000-0000-4000-8000-000000000012";
const I1 = "00000000-0000-4000-8000-000000000021";
const I2 = "00000000-0000-4000-8000-000000000022";
const claims = (kind: ScopeClaims["kind"], workspaces: ScopeClaims["workspaces"], inboxId: string | null = null): ScopeClaims => ({
  v: 1,
  aud: ["billing"],
  kid: "00000000-0000-4000-8000-0000000000ff",
  kind,
  tenantId: kind === "super_admin" ? null : T,
  workspaces,
  inboxId,
  iat: 0,
  exp: 60,
});
const none: Known = { workspace: null, inbox: null };
const inboxIn = (workspaceId: string, tenantId = T): Known => ({ workspace: null, inbox: { tenantId, workspaceId } });
const code = (f: () => unknown) => {
  try {
    f();
    return "ok";
  } catch (e) {
    return e instanceof AppError ? e.code : "other";
  }
};

describe("metrics scope", () => {
  it("a tenant key: the tenant, or a workspace or inbox of its own; any other is NOT_FOUND", () => {
    const tk = claims("tenant", "*");
    expect(decideScope(tk, {}, none)).toEqual({ tenantId: T, workspaceId: null, inboxId: null });
    expect(decideScope(tk, { workspace: W1 }, { workspace: { tenantId: T }, inbox: null })).toEqual({ tenantId: T, workspaceId: W1, inboxId: null });
    expect(decideScope(tk, { inbox: I1 }, inboxIn(W1))).toEqual({ tenantId: T, workspaceId: W1, inboxId: I1 });
    expect(code(() => decideScope(tk, { workspace: W1 }, { workspace: { tenantId: OTHER_T }, inbox: null }))).toBe("NOT_FOUND");
    expect(code(() => decideScope(tk, { workspace: W1 }, none))).toBe("NOT_FOUND");
    expect(code(() => decideScope(tk, { inbox: I1 }, inboxIn(W1, OTHER_T)))).toBe("NOT_FOUND");
    expect(code(() => decideScope(tk, { workspace: W2, inbox: I1 }, { workspace: { tenantId: T }, inbox: { tenantId: T, workspaceId: W1 } }))).toBe(
      "NOT_FOUND",
    );
  });

  it("a workspace key is pinned to its workspace; an inbox elsewhere is NOT_FOUND", () => {
    const wk = claims("workspace", [W1]);
    expect(decideScope(wk, { workspace: W2 }, { workspace: { tenantId: T }, inbox: null })).toEqual({ tenantId: T, workspaceId: W1, inboxId: null });
    expect(decideScope(wk, { inbox: I1 }, inboxIn(W1))).toEqual({ tenantId: T, workspaceId: W1, inboxId: I1 });
    expect(code(() => decideScope(wk, { inbox: I2 }, inboxIn(W2)))).toBe("NOT_FOUND");
    expect(code(() => decideScope(wk, { inbox: I2 }, none))).toBe("NOT_FOUND");
  });

  it("an inbox key sees its inbox whatever it asks; another inbox is NOT_FOUND; the operator FORBIDDEN", () => {
    const ak = claims("inbox", [W1], I1);
    expect(decideScope(ak, { workspace: W2 }, none)).toEqual({ tenantId: T, workspaceId: W1, inboxId: I1 });
    expect(decideScope(ak, { inbox: I1 }, none)).toEqual({ tenantId: T, workspaceId: W1, inboxId: I1 });
    expect(code(() => decideScope(ak, { inbox: I2 }, inboxIn(W1)))).toBe("NOT_FOUND");
    expect(code(() => decideScope(claims("super_admin", "*"), {}, none))).toBe("FORBIDDEN");
  });
});
