import type { Readable, Writable } from "node:stream";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { httpApi } from "./api.ts";
import { createMailServer } from "./tools.ts";

export interface StdioOptions {
  /** The API's base URL, without `/v1`. */
  apiUrl: string;
  /** The key every tool call is made with: the agent's `ak_` key, or a `wk_` / `tk_` key. */
  key: string;
  stdin?: Readable;
  stdout?: Writable;
  /** Where protocol errors are reported (stdout carries the protocol itself). Default: stderr. */
  stderr?: Writable;
}

/**
 * Serves the mail tools over stdio, as an MCP host launches a local server, calling the API
 * at `apiUrl` with `key`. Resolves when the client closes stdin (or the transport closes).
 * Nothing is written to stdout but protocol messages, and the key is written nowhere.
 */
export async function serveStdio(opts: StdioOptions): Promise<void> {
  const stdin = opts.stdin ?? process.stdin;
  const stderr = opts.stderr ?? process.stderr;
  const api = httpApi({ apiUrl: opts.apiUrl, key: opts.key });
  const server = createMailServer(() => api);
  const transport = new StdioServerTransport(stdin, opts.stdout ?? process.stdout);
  const closed = new Promise<void>((resolve) => {
    transport.onclose = resolve;
    stdin.once("end", resolve);
    stdin.once("close", resolve);
  });
  server.server.onerror = (err) => void stderr.write(`mcp: ${err.message}\n`);
  await server.connect(transport);
  await closed;
  await server.close();
}
