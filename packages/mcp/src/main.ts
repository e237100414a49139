import { parseArgs } from "node:util";
import { serveStdio } from "./stdio.ts";

/*
 * The stdio MCP server on its own:
 *   node --import tsx packages/mcp/src/main.ts [--key <key>] [--url <api url>]
 * The key may come from MAM_API_KEY instead, which keeps it out of the process list; the
 * URL from MAM_API_URL (default http://127.0.0.1:8080, the gateway of `pnpm start`).
 */

const USAGE = "usage: main.ts [--key <api key>] [--url <api url>] (or MAM_API_KEY, MAM_API_URL)";

let values: { key?: string; url?: string };
try {
  ({ values } = parseArgs({ options: { key: { type: "string" }, url: { type: "string" } }, strict: true }));
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
  process.exit(2);
}
const key = values.key ?? process.env.MAM_API_KEY;
if (!key) {
  process.stderr.write(`no API key: give --key or MAM_API_KEY\n${USAGE}\n`);
  process.exit(2);
}
await serveStdio({ apiUrl: values.url ?? process.env.MAM_API_URL ?? "http://127.0.0.1:8080", key });
