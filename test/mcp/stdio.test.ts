import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe } from "vitest";
import { Client, StdioClientTransport } from "@mam/mcp/client.ts";
import { mailToolsTests, startWorld, stopWorld, type World } from "./mail-tools.ts";

const ENTRY = fileURLToPath(new URL("../../packages/mcp/src/main.ts", import.meta.url));

/** The stdio server as an MCP host runs it: its own process, given a key, calling the gateway over HTTP. */
describe("MCP over stdio", () => {
  let world: World;
  const stderr: string[] = [];

  beforeAll(async () => {
    world = await startWorld();
  });
  afterAll(async () => {
    await stopWorld(world);
  });

  async function connect(key: string): Promise<Client> {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ["--import", "tsx", ENTRY],
      env: { MAM_API_KEY: key, MAM_API_URL: `http://127.0.0.1:${world.s.gateways[0]!.port}` },
      stderr: "pipe",
    });
    transport.stderr?.on("data", (d: Buffer) => stderr.push(d.toString()));
    const client = new Client({ name: "stdio-test", version: "1.0.0" });
    await client.connect(transport);
    return client;
  }

  mailToolsTests(() => world, connect);
});
