import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, closeBus, type Bus } from "@mam/bus/connection.ts";
import { request } from "@mam/bus/rpc-client.ts";
import { Rpc } from "@mam/contracts/subjects.ts";
import type { Principal } from "@mam/contracts/keys.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { generateScopeKeys } from "@mam/scope/key-material.ts";
import { ScopeSigner } from "@mam/scope/token.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/**
 * Requests sent straight to identity over NATS, bypassing the gateway: the service itself
 * must refuse anything without a valid, current token for the right workspace.
 */
describe("identity verifies the scope token on every command and query", () => {
  const s = new Stack();
  let bus: Bus;
  let signer: ScopeSigner;
  let wkPrincipal: Principal;
  let tenantPrincipal: Principal;
  let acmeId: string;
  let defaultId: string;

  beforeAll(async () => {
    await s.start();
    const t = await provisionTenant(s);
    defaultId = t.workspace.id;
    acmeId = (await s.api("POST", "/v1/workspaces", { key: t.key.key, body: { name: "Acme Corp" } })).body.id;
    const wk = (await s.api("POST", `/v1/workspaces/${acmeId}/keys`, { key: t.key.key, body: {} })).body;
    wkPrincipal = { keyId: wk.id, kind: "workspace", tenantId: t.tenant.id, workspaceId: acmeId, inboxId: null };
    tenantPrincipal = { keyId: t.key.id, kind: "tenant", tenantId: t.tenant.id, workspaceId: null, inboxId: null };
    bus = await connectBus({ url: s.iso.urls.NATS_URL, prefix: s.iso.prefix, name: "test", logger: createLogger("test", "silent") });
    signer = new ScopeSigner(s.iso.scopeKeys.privateKeyPem);
  });
  afterAll(async () => {
    await closeBus(bus);
    await s.stop();
  });

  const get = (workspaceId: string, scope?: string) => request(bus, Rpc.identity.workspaceGet, { workspaceId }, { scope });

  it("answers a valid token for its own workspace", async () => {
    const r = await get(acmeId, signer.mint(wkPrincipal, ["identity"]));
    expect(r.ok).toBe(true);
  });

  it("refuses a request without a token", async () => {
    const r = await get(acmeId);
    expect(r).toEqual({ ok: false, error: { error: "Invalid or expired scope token", code: "UNAUTHORIZED" } });
  });

  it("refuses a token signed by another key", async () => {
    const forger = new ScopeSigner(generateScopeKeys().privateKeyPem);
    const r = await get(acmeId, forger.mint(wkPrincipal, ["identity"]));
    expect(r.ok ? "ok" : r.error.code).toBe("UNAUTHORIZED");
  });

  it("refuses a token whose claims were altered after signing", async () => {
    const [body, sig] = signer.mint(wkPrincipal, ["identity"]).split(".") as [string, string];
    const claims = JSON.parse(Buffer.from(body, "base64url").toString());
    claims.workspaces = "*";
    claims.kind = "tenant";
    const tampered = `${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${sig}`;
    const r = await get(defaultId, tampered);
    expect(r.ok ? "ok" : r.error.code).toBe("UNAUTHORIZED");
  });

  it("refuses an expired token", async () => {
    const past = new ScopeSigner(s.iso.scopeKeys.privateKeyPem, () => Date.now() - 120_000);
    const r = await get(acmeId, past.mint(wkPrincipal, ["identity"]));
    expect(r.ok ? "ok" : r.error.code).toBe("UNAUTHORIZED");
  });

  it("refuses garbage in place of a token", async () => {
    for (const t of ["x", "a.b", "..", "e30.e30"]) {
      const r = await get(acmeId, t);
      expect(r.ok ? "ok" : r.error.code).toBe("UNAUTHORIZED");
    }
  });

  it("refuses a valid token for another workspace, as if the workspace did not exist", async () => {
    const r = await get(defaultId, signer.mint(wkPrincipal, ["identity"]));
    expect(r.ok ? "ok" : r.error.code).toBe("NOT_FOUND");
    // Even if the body names the other workspace, a command takes the scope from the token.
    const issue = await request(bus, Rpc.identity.keyIssue, { workspaceId: defaultId, body: {} }, { scope: signer.mint(wkPrincipal, ["identity"]) });
    expect(issue.ok ? "ok" : issue.error.code).toBe("FORBIDDEN");
  });

  it("a tenant token for one tenant cannot reach another tenant's workspace", async () => {
    const t2 = await provisionTenant(s, "Other");
    const r = await get(t2.workspace.id, signer.mint(tenantPrincipal, ["identity"]));
    expect(r.ok ? "ok" : r.error.code).toBe("NOT_FOUND");
    const del = await request(bus, Rpc.identity.workspaceDelete, { workspaceId: t2.workspace.id }, { scope: signer.mint(tenantPrincipal, ["identity"]) });
    expect(del.ok ? "ok" : del.error.code).toBe("NOT_FOUND");
  });
});
