import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "@mam/contracts/errors.ts";
import type { RequestIn } from "@mam/contracts/rpc-contract.ts";
import type { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

type Json = Record<string, any>;
const METHODS = ["get", "post", "put", "patch", "delete"];

/** Express's own record of what it routes: every route layer, under the path its router is mounted at. */
interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  rawPath?: unknown;
  slash?: boolean;
}
function servedRoutes(stack: Layer[], prefix = ""): string[] {
  return stack.flatMap((l) => {
    if (l.route) return Object.keys(l.route.methods).map((m) => `${m.toUpperCase()} ${prefix}${l.route!.path}`);
    if (l.handle?.stack) return servedRoutes(l.handle.stack, prefix + (typeof l.rawPath === "string" && !l.slash ? l.rawPath : ""));
    return [];
  });
}

/** The API as the document describes it, and checks of real answers against it. */
describe("the OpenAPI document and the reference page", () => {
  const s = new Stack({ logLevel: "warn" });
  let doc: Json;
  let tk: string;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);

  /** The schema the document gives for one response, with the components its $refs point into. */
  function responseSchema(method: string, path: string, status: number, media = "application/json"): Json {
    const schema = doc.paths[path]?.[method]?.responses?.[String(status)]?.content?.[media]?.schema;
    if (!schema) throw new Error(`no documented ${status} ${media} for ${method.toUpperCase()} ${path}`);
    return { ...schema, components: doc.components };
  }
  function expectDocumented(method: string, path: string, r: { status: number; body: unknown }) {
    const validate = ajv.compile(responseSchema(method, path, r.status));
    const valid = validate(r.body);
    expect(validate.errors ?? [], `${method.toUpperCase()} ${path} ${r.status}: ${JSON.stringify(r.body).slice(0, 400)}`).toEqual([]);
    expect(valid).toBe(true);
  }

  beforeAll(async () => {
    await s.start();
    tk = (await provisionTenant(s, "Docs")).key.key;
    doc = (await s.api("GET", "/v1/openapi.json")).body;
  });
  afterAll(() => s.stop());

  it("is served at /v1/openapi.json without a key and is a valid OpenAPI 3.1 document", async () => {
    const r = await s.api("GET", "/v1/openapi.json");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^application\/json/);
    const validator = new Validator();
    const result = await validator.validate(r.body as Json);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("documents every /v1 route the gateway serves, and nothing else", () => {
    const served = servedRoutes((s.gateways[0]!.app as unknown as { router: { stack: Layer[] } }).router.stack)
      .filter((r) => r.split(" ")[1]!.startsWith("/v1/"))
      .map((r) => r.replace(/:(\w+)/g, "{$1}"));
    const documented = Object.entries(doc.paths as Json).flatMap(([path, item]) =>
      METHODS.filter((m) => (item as Json)[m]).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(served.length).toBeGreaterThan(50);
    expect(new Set(served).size).toBe(served.length);
    expect([...documented].sort()).toEqual([...served].sort());
  });

  it("documents the WebSocket doors: an upgrade (101), 426 without one, the key in ?api_key= too", async () => {
    for (const path of ["/v1/ws", "/v1/inboxes/{inboxId}/ws"]) {
      const op = doc.paths[path].get;
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(["101", "401", "426", "503"]));
      expect(op.parameters.map((p: Json) => p.name)).toContain("api_key");
      expect(op.description).toContain("last_event_id");
    }
    const plain = await s.api("GET", "/v1/ws", { key: tk });
    expect(plain.status).toBe(426);
    expect(plain.body).toEqual({ error: expect.any(String), code: "VALIDATION_ERROR" });
  });

  it("files every operation under a tag the document declares; the MCP door under its own", () => {
    const declared = new Set((doc.tags as { name: string }[]).map((t) => t.name));
    const undeclared = Object.entries(doc.paths as Json).flatMap(([path, ops]) =>
      METHODS.filter((m) => ops[m]).flatMap((m) =>
        ((ops[m].tags ?? []) as string[]).length === 0
          ? [`${m} ${path} (none)`]
          : (ops[m].tags as string[]).filter((t) => !declared.has(t)).map((t) => `${m} ${path} ${t}`),
      ),
    );
    expect(undeclared).toEqual([]);
    for (const m of ["post", "delete", "get"]) expect(doc.paths["/v1/mcp"]?.[m]?.tags, m).toEqual(["MCP"]);
  });

  it("names the four kinds of key, each in X-API-Key or Authorization: Bearer", () => {
    const schemes = doc.components.securitySchemes as Json;
    for (const [kind, prefix] of [
      ["operator", "sa_"],
      ["tenant", "tk_"],
      ["workspace", "wk_"],
      ["inbox", "ak_"],
    ]) {
      expect(schemes[`${kind}Key`]).toMatchObject({ type: "apiKey", in: "header", name: "X-API-Key" });
      expect(schemes[`${kind}Bearer`]).toMatchObject({ type: "http", scheme: "bearer" });
      expect(schemes[`${kind}Key`].description).toContain(`\`${prefix}\``);
    }
    expect(doc.paths["/v1/openapi.json"].get.security).toEqual([]);
    expect(doc.paths["/v1/tenants"].post.security).toEqual([{ operatorKey: [] }, { operatorBearer: [] }]);
    expect(doc.paths["/v1/inboxes"].post.security.flatMap((r: Json) => Object.keys(r)).sort()).toEqual([
      "tenantBearer",
      "tenantKey",
      "workspaceBearer",
      "workspaceKey",
    ]);
  });

  it("gives every operation the error envelope with the public error codes", () => {
    const error = doc.components.schemas.Error;
    expect(error.required.sort()).toEqual(["code", "error"]);
    expect([...error.properties.code.enum].sort()).toEqual([...ErrorCode.options].sort());
    // A dependency outage is its own documented answer, not an internal error.
    expect(doc.paths["/v1/workspaces"].get.responses["503"].description).toContain("`UNAVAILABLE`");
    expect(doc.paths["/v1/me"].get.responses["503"].description).toContain("Retry-After");
    for (const [path, item] of Object.entries(doc.paths as Json)) {
      for (const m of METHODS.filter((x) => item[x])) {
        const failures = Object.entries(item[m].responses as Json).filter(([status]) => /^[45]/.test(status));
        if (path === "/v1/openapi.json") continue;
        expect(failures.length, `${m} ${path}`).toBeGreaterThan(0);
        for (const [, r] of failures) expect(r.content["application/json"].schema).toEqual({ $ref: "#/components/schemas/Error" });
      }
    }
  });

  it("describes parameters and bodies from the contracts", () => {
    const send = doc.paths["/v1/inboxes/{inboxId}/send"].post;
    expect(send.parameters.map((p: Json) => `${p.in}:${p.name}`).sort()).toEqual(["header:Idempotency-Key", "path:inboxId"]);
    expect(send.requestBody.required).toBe(true);
    expect(doc.components.schemas.SendBody.required.sort()).toEqual(["subject", "to"]);
    const list = doc.paths["/v1/inboxes/{inboxId}/messages"].get;
    expect(list.parameters.map((p: Json) => `${p.in}:${p.name}`).sort()).toEqual([
      "path:inboxId",
      "query:cursor",
      "query:direction",
      "query:limit",
      "query:offset",
    ]);
    expect(doc.components.schemas.Pagination.properties).toHaveProperty("nextCursor");
    expect(Object.keys(doc.paths["/v1/inboxes/{inboxId}/messages/{messageId}/raw"].get.responses["200"].content)).toEqual(["message/rfc822"]);
    expect(Object.keys(doc.paths["/v1/inboxes/{inboxId}/messages/{messageId}/attachments/{attachmentId}"].get.responses["200"].content)).toEqual([
      "application/octet-stream",
    ]);
  });

  it("real answers match their documented schemas", async () => {
    const createA: RequestIn<typeof RpcContracts.mailbox.inboxCreate>["body"] = { username: "docs-a", displayName: "Docs A" };
    const a = await s.api("POST", "/v1/inboxes", { key: tk, body: createA });
    expect(a.status).toBe(201);
    expectDocumented("post", "/v1/inboxes", a);
    // The documented replies are exact: a field the document does not name is a failure.
    expect(ajv.compile(responseSchema("post", "/v1/inboxes", 201))({ ...a.body, surprise: 1 })).toBe(false);
    const again = await s.api("POST", "/v1/inboxes", { key: tk, body: createA });
    expect(again.status).toBe(200);
    expectDocumented("post", "/v1/inboxes", again);
    const b = await s.api("POST", "/v1/inboxes", { key: tk, body: { username: "docs-b" } });

    const mail: RequestIn<typeof RpcContracts.mailbox.messageSend>["body"] = { to: b.body.email, subject: "Hello", plainBody: "Hi B", verified: true };
    const sent = await s.api("POST", `/v1/inboxes/${a.body.id}/send`, { key: a.body.apiKey, body: mail });
    expect(sent.status).toBe(200);
    expectDocumented("post", "/v1/inboxes/{inboxId}/send", sent);

    let received: { status: number; body: Json } | undefined;
    await waitFor(
      async () => {
        received = await s.api("GET", `/v1/inboxes/${b.body.id}/messages`, { key: b.body.apiKey });
        return received.body.messages?.length === 1;
      },
      { timeoutMs: 10_000, what: "the message in B's inbox" },
    );
    expectDocumented("get", "/v1/inboxes/{inboxId}/messages", received!);
    const outbox = await s.api("GET", `/v1/inboxes/${a.body.id}/messages`, { key: a.body.apiKey });
    expectDocumented("get", "/v1/inboxes/{inboxId}/messages", outbox);
    const one = await s.api("GET", `/v1/inboxes/${b.body.id}/messages/${received!.body.messages[0].id}`, { key: b.body.apiKey });
    expectDocumented("get", "/v1/inboxes/{inboxId}/messages/{messageId}", one);

    expectDocumented("get", "/v1/me", await s.api("GET", "/v1/me", { key: tk }));
    expectDocumented("get", "/v1/workspaces", await s.api("GET", "/v1/workspaces", { key: tk }));
    expectDocumented("get", "/v1/messages", await s.api("GET", "/v1/messages?group=thread", { key: tk }));
  });

  it("errors match the documented envelope", async () => {
    const missing = await s.api("GET", "/v1/inboxes/0190a1a2-0000-7000-8000-000000000000", { key: tk });
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe("NOT_FOUND");
    expectDocumented("get", "/v1/inboxes/{inboxId}", missing);
    const invalid = await s.api("POST", "/v1/inboxes", { key: tk, body: { username: "has space" } });
    expect(invalid.status).toBe(400);
    expect(invalid.body.fields.map((f: { path: string }) => f.path)).toEqual(["username"]);
    expectDocumented("post", "/v1/inboxes", invalid);
    const noKey = await s.api("GET", "/v1/inboxes");
    expect(noKey.status).toBe(401);
    expectDocumented("get", "/v1/inboxes", noKey);
  });

  it("serves a readable reference page at /docs without a key", async () => {
    const r = await s.api("GET", "/docs");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^text\/html/);
    const html = r.body as string;
    expect(html).not.toMatch(/<script/i);
    const esc = (x: string) => x.replace(/&/g, "&#38;").replace(/</g, "&#60;").replace(/>/g, "&#62;").replace(/"/g, "&#34;").replace(/'/g, "&#39;");
    for (const [path, item] of Object.entries(doc.paths as Json)) {
      for (const m of METHODS.filter((x) => item[x])) {
        const op = item[m];
        const article = html.slice(html.indexOf(`<article id="${op.operationId}">`));
        expect(article, `${m} ${path}`).toContain(`${m.toUpperCase()}</span> <code>${esc(path)}</code>`);
        const own = article.slice(0, article.indexOf("</article>"));
        expect(own).toContain(esc(op.summary).replace(/`([^`]+)`/g, "<code>$1</code>"));
        for (const p of op.parameters ?? []) expect(own, `${m} ${path} ${p.name}`).toContain(`<code>${esc(p.name)}</code>`);
        if (op.requestBody) expect(own).toContain("Request body");
        for (const status of Object.keys(op.responses)) expect(own).toContain(`${status}`);
      }
    }
    // Bodies and replies are spelled out field by field.
    expect(html).toMatch(/<article id="schema-SendBody"><h3>SendBody<\/h3><ul class="fields"><li><code>to<\/code>/);
  });
});
