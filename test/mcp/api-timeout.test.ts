import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpApi } from "@mam/mcp/api.ts";
import { Client, InMemoryTransport } from "@mam/mcp/client.ts";
import { createMailServer } from "@mam/mcp/tools.ts";

/** The stdio server's API client against an API that takes the connection and never answers. */
describe("MCP tools over HTTP: an API that does not answer", () => {
  let silent: Server;
  let apiUrl: string;
  const key = `ak_${"x".repeat(43)}`;

  beforeAll(async () => {
    // Reads each request and never answers it.
    silent = createServer((req) => void req.resume());
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    apiUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    silent.closeAllConnections();
    await new Promise((resolve) => silent.close(resolve));
  });

  it("gives the call up as UNAVAILABLE, and the tool says so", async () => {
    const api = httpApi({ apiUrl, key, timeoutMs: 300 });
    const direct = await api({ method: "GET", route: "/inboxes" });
    expect(direct).toEqual({ ok: false, error: { error: expect.stringContaining("did not answer in time"), code: "UNAVAILABLE" } });
    expect(JSON.stringify(direct)).not.toContain(key);

    const server = createMailServer(() => api);
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const client = new Client({ name: "timeout-test", version: "1.0.0" });
    await client.connect(clientSide);
    const r = await client.callTool({ name: "list_inboxes", arguments: {} });
    expect(r.isError).toBe(true);
    expect(r.content).toEqual([{ type: "text", text: expect.stringMatching(/^UNAVAILABLE: .*did not answer in time/) }]);
    await client.close();
    await server.close();
  });
});
