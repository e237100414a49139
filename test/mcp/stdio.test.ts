import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, StdioClientTransport } from "@mam/mcp/client.ts";
import { mailToolsTests, startWorld, stopWorld, type World } from "./mail-tools.ts";

/** The operator CLI: `mam mcp --key <key> --url <api url>`. */
const CLI = fileURLToPath(new URL("../../packages/cli/src/main.ts", import.meta.url));

/** The stdio server as an MCP host runs it: `mam mcp` in its own process, given a key, calling the gateway over HTTP. */
describe("MCP over stdio", () => {
  let world: World;
  const stderr: string[] = [];

  beforeAll(async () => {
    world = await startWorld();
  });
  afterAll(async () => {
    await stopWorld(world);
  });

  /** The agent's key on the command line as `--key`; the tenant's in MAM_KEY, as a host that keeps it out of the process list would. */
  async function connect(key: string): Promise<Client> {
    const url = `http://127.0.0.1:${world.s.gateways[0]!.port}`;
    const inArgs = key === world.a.apiKey;
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ["--import", "tsx", CLI, "mcp", ...(inArgs ? ["--key", key] : []), "--url", url],
      env: inArgs ? {} : { MAM_KEY: key },
      stderr: "pipe",
    });
    transport.stderr?.on("data", (d: Buffer) => stderr.push(d.toString()));
    const client = new Client({ name: "stdio-test", version: "1.0.0" });
    await client.connect(transport);
    return client;
  }

  mailToolsTests(() => world, connect);

  it("the server's stderr shows no key", () => {
    const text = stderr.join("");
    for (const key of world.keys) expect(text.includes(key)).toBe(false);
  });
});
