import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeBus, connectBus, type Bus } from "@mam/bus/connection.ts";
import { request } from "@mam/bus/rpc-client.ts";
import type { Principal } from "@mam/contracts/keys.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { Rpc } from "@mam/contracts/subjects.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { ScopeSigner } from "@mam/scope/token.ts";
import { replyOf } from "@mam/testing/contract-reply.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

const REFUSED = { ok: false, error: { error: "Invalid or expired scope token", code: "UNAUTHORIZED" } };

/**
 * Each scope token names the service it is for. Requests sent straight over NATS, with
 * tokens signed by this file's gateway key: a token for one service is refused by another.
 */
describe("scope tokens name their audience", () => {
  const s = new Stack();
  let bus: Bus;
  let signer: ScopeSigner;
  let tk: string;
  let tenant: Principal;
  let workspaceId: string;

  beforeAll(async () => {
    await s.start();
    const t = await provisionTenant(s);
    tk = t.key.key;
    workspaceId = t.workspace.id;
    tenant = { keyId: t.key.id, kind: "tenant", tenantId: t.tenant.id, workspaceId: null, inboxId: null };
    bus = await connectBus({ url: s.iso.urls.NATS_URL, prefix: s.iso.prefix, name: "test", logger: createLogger("test", "silent") });
    signer = new ScopeSigner(s.iso.scopeKeys.privateKeyPem);
  });
  afterAll(async () => {
    await closeBus(bus);
    await s.stop();
  });

  const getWorkspace = (aud: [string, ...string[]]) => request(bus, Rpc.identity.workspaceGet, { workspaceId }, { scope: signer.mint(tenant, aud) });

  it("identity answers a token minted for identity", async () => {
    expect((await getWorkspace(["identity"])).ok).toBe(true);
  });

  it("identity refuses a token minted for the mailbox, as unauthorized", async () => {
    expect(await getWorkspace(["mailbox"])).toEqual(REFUSED);
    expect(await request(bus, Rpc.identity.tenantGet, {}, { scope: signer.mint(tenant, ["mailbox"]) })).toEqual(REFUSED);
  });

  it("a mailbox token that names identity after it is good at identity only for what the mailbox asks on the caller's behalf", async () => {
    const forwarded = () => signer.mint(tenant, ["mailbox", "identity"]);
    expect((await getWorkspace(["mailbox", "identity"])).ok).toBe(true);
    expect((await request(bus, Rpc.identity.tenantGet, {}, { scope: forwarded() })).ok).toBe(true);
    // Anything else needs a token minted for identity itself.
    expect(await request(bus, Rpc.identity.keyIssue, { workspaceId, body: {} }, { scope: forwarded() })).toEqual(REFUSED);
    expect(await request(bus, Rpc.identity.workspaceCreate, { name: "Sneaky" }, { scope: forwarded() })).toEqual(REFUSED);
    expect(await request(bus, Rpc.identity.tenantKeyRotate, {}, { scope: forwarded() })).toEqual(REFUSED);
    expect(await request(bus, Rpc.identity.workspaceList, {}, { scope: forwarded() })).toEqual(REFUSED);
  });

  it("the mailbox refuses a token minted for identity", async () => {
    const r = await request(bus, Rpc.mailbox.inboxList, {}, { scope: signer.mint(tenant, ["identity"]) });
    expect(r).toEqual(REFUSED);
    expect((await request(bus, Rpc.mailbox.inboxList, {}, { scope: signer.mint(tenant, ["mailbox"]) })).ok).toBe(true);
  });

  it("through the gateway, creating an inbox still consults identity on the caller's behalf", async () => {
    const r = await s.api("POST", "/v1/inboxes", { key: tk, body: { username: "audience-check" } });
    const inbox = replyOf(RpcContracts.mailbox.inboxCreate, r, 201);
    expect(inbox).toMatchObject({ workspaceId, apiKey: expect.stringMatching(/^ak_/) });
    // And reading it, a route that does not consult identity, works with its own token.
    expect((await s.api("GET", "/v1/inboxes", { key: tk })).status).toBe(200);
  });
});
