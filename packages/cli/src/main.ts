import { Command, Option } from "commander";
import { registerInboxes } from "./commands/inboxes.ts";
import { registerKeys } from "./commands/keys.ts";
import { registerMcp } from "./commands/mcp.ts";
import { registerRebuild } from "./commands/rebuild.ts";
import { registerStatus } from "./commands/status.ts";
import { registerTenants } from "./commands/tenants.ts";
import { registerWorkspaces } from "./commands/workspaces.ts";
import { CliError } from "./context.ts";

/**
 * `mam`, the operator's CLI. Each command lives in commands/<name>.ts and registers itself
 * here with one line.
 */
export function buildProgram(): Command {
  const program = new Command("mam")
    .description("operate a myagentmail platform: tenants, workspaces, keys, inboxes, status, read-model rebuilds")
    .addOption(new Option("--url <url>", "the public API's base URL").env("MAM_URL").default("http://localhost:8080"))
    .addOption(new Option("--key <key>", "the API key to act with (sa_ operator, tk_ tenant, wk_ workspace)").env("MAM_KEY"))
    .option("--json", "machine-readable output")
    .showHelpAfterError()
    .exitOverride();
  registerTenants(program);
  registerWorkspaces(program);
  registerKeys(program);
  registerInboxes(program);
  registerStatus(program);
  registerRebuild(program);
  registerMcp(program);
  return program;
}

async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (err) {
    const code = (err as { code?: string }).code;
    // Commander has printed its own message (usage, --help, --version).
    if (typeof code === "string" && code.startsWith("commander.")) return (err as { exitCode?: number }).exitCode ?? 1;
    if (err instanceof CliError) process.stderr.write(`error: ${err.message} (${err.code})\n`);
    else process.stderr.write(`error: ${(err as Error).message ?? String(err)} (INTERNAL)\n`);
    return 1;
  }
}

const code = await main(process.argv);
// Done: an idle keep-alive connection of fetch would hold the process a few seconds more.
// Exits once what was written has been handed over.
process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
