import type { Command } from "commander";
import { globalsOf, requireKey } from "../context.ts";

/**
 * `mam mcp --key <key> [--url <api url>]`: the MCP server of the mail tools on stdio, for an
 * MCP host (an agent's runtime) to launch. stdout carries the protocol alone; the key (or
 * MAM_KEY, which keeps it out of the process list) is used for the API calls only.
 */
export function registerMcp(program: Command): void {
  program
    .command("mcp")
    .description("serve the mail tools to an MCP client on stdio, acting with the key (an agent's ak_ key, or a wk_ or tk_ key)")
    .action(async (_o, cmd: Command) => {
      const g = globalsOf(cmd);
      const key = requireKey(g);
      // Loaded here: the other commands need not load the MCP SDK.
      const { serveStdio } = await import("@mam/mcp/stdio.ts");
      await serveStdio({ apiUrl: g.url, key });
    });
}
