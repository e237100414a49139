import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppError } from "@mam/contracts/errors.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { ScopeVerifier } from "@mam/scope/token.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { closeBus, connectBus, type Bus } from "./connection.ts";
import { RpcServer } from "./rpc.ts";
import { request, requestPassingBody } from "./rpc-client.ts";
import { INLINE_BYTES } from "./spill.ts";

/** requestPassingBody: a success reply's body as the service's bytes, anything else as `request` gives it. */
describe("requestPassingBody", () => {
  const iso = isolate();
  const logger = createLogger("test", "silent");
  let bus: Bus;
  let server: RpcServer;
  const page = {
    items: [
      { id: 1, text: 'é ünïcode \u2028 "quoted" \\ {braces}' },
      { id: 2, text: null },
    ],
    next: "cursor",
  };
  /** Past one message (three halves of it), in two-byte characters: the cut must fall between whole characters. */
  const large = { items: Array.from({ length: 3 }, (_, i) => ({ i, blob: "é".repeat(INLINE_BYTES / 4) })) };

  beforeAll(async () => {
    bus = await connectBus({ url: iso.urls.NATS_URL, prefix: iso.prefix, name: "rpc-pass-test", logger });
    server = new RpcServer(bus, "rpc-pass-test", new ScopeVerifier(iso.scopeKeys.publicKeyPem, "test"), logger);
    server.handlePublic("svc.test.page", async () => ({ status: 200, body: page }));
    server.handlePublic("svc.test.created", async () => ({ status: 201, body: { id: "new" } }));
    server.handlePublic("svc.test.missing", async () => {
      throw new AppError("NOT_FOUND", "No such thing");
    });
    server.handlePublic("svc.test.bytes", async () => ({ status: 200, body: { $binary: { base64: "aGk=", contentType: "text/plain", size: 2, offset: 0 } } }));
    server.handlePublic("svc.test.large", async () => ({ status: 200, body: large }));
    await bus.nc.flush();
  });
  afterAll(async () => {
    await server?.close();
    await closeBus(bus);
    await iso.cleanup();
  });

  it("gives a success reply's body as the exact bytes the service wrote, with its status", async () => {
    const r = await requestPassingBody(bus, "svc.test.page", {});
    expect(r).toMatchObject({ ok: true, status: 200 });
    expect("json" in r && r.json.toString("utf8")).toBe(JSON.stringify(page));
    const c = await requestPassingBody(bus, "svc.test.created", {});
    expect(c.ok && c.status).toBe(201);
    expect("json" in c && JSON.parse(c.json.toString("utf8"))).toEqual({ id: "new" });
  });

  it("passes a reply too large for one message through the bucket the same way", async () => {
    const r = await requestPassingBody(bus, "svc.test.large", {});
    expect("json" in r && r.json.length).toBe(Buffer.byteLength(JSON.stringify(large)));
    expect("json" in r && JSON.parse(r.json.toString("utf8"))).toEqual(large);
  });

  it("decodes what is not a body to pass on: an error, bytes", async () => {
    expect(await requestPassingBody(bus, "svc.test.missing", {})).toEqual(await request(bus, "svc.test.missing", {}));
    expect(await requestPassingBody(bus, "svc.test.missing", {})).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });
    const b = await requestPassingBody(bus, "svc.test.bytes", {});
    expect(b).toEqual(await request(bus, "svc.test.bytes", {}));
    expect("json" in b).toBe(false);
  });
});
