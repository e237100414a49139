import type { Command } from "commander";
import { allPages, api } from "../api.ts";
import { globalsOf } from "../context.ts";
import { emit, fields, table } from "../output.ts";

interface Inbox {
  id: string;
  email: string;
  displayName: string | null;
  workspaceId: string;
  addresses: unknown[];
  createdAt: string;
}

/** `mam inboxes create|list|delete`, with a tk_ or wk_ key. */
export function registerInboxes(program: Command): void {
  const inboxes = program.command("inboxes").description("create, list and delete inboxes (tk_ or wk_ key)");

  inboxes
    .command("create")
    .description("create an inbox (its ak_ key is shown once)")
    .argument("[username]", "the address's local part (default: derived from the tenant)")
    .option("--display-name <name>", "the name mail is sent under")
    .option("--domain <domain>", "a custom domain of the tenant (default: the platform's)")
    .option("--workspace <workspaceId>", "the workspace (default: the key's, or the tenant's Default)")
    .option("--strict", "refuse a taken address instead of falling back to name1 … name99")
    .action(async (username: string | undefined, o: { displayName?: string; domain?: string; workspace?: string; strict?: boolean }, cmd: Command) => {
      const g = globalsOf(cmd);
      const body = { username, displayName: o.displayName, domain: o.domain, workspaceId: o.workspace };
      const i = await api(g, "POST", "/inboxes", { body, query: { strict: o.strict ? "true" : undefined } });
      emit(g, i, () =>
        fields([
          ["inbox", i.id],
          ["email", i.email],
          ["workspace", i.workspaceId],
          ...(i.existed ? [["", "it existed already: its key is not shown again"] as [string, unknown]] : []),
          ...(i.apiKey ? [["key", i.apiKey] as [string, unknown], ["", "the key is shown this once: keep it"] as [string, unknown]] : []),
        ]),
      );
    });

  inboxes
    .command("list")
    .description("list the inboxes the key sees")
    .option("--workspace <workspaceId>", "one workspace's only")
    .action(async (o: { workspace?: string }, cmd: Command) => {
      const g = globalsOf(cmd);
      const all = await allPages<Inbox>(g, "/inboxes", "inboxes", { workspace: o.workspace });
      emit(g, { inboxes: all }, () =>
        table(all, [
          ["ID", (i) => i.id],
          ["EMAIL", (i) => i.email],
          ["NAME", (i) => i.displayName],
          ["WORKSPACE", (i) => i.workspaceId],
          ["ADDRESSES", (i) => i.addresses.length],
          ["CREATED", (i) => i.createdAt],
        ]),
      );
    });

  inboxes
    .command("delete")
    .description("delete an inbox (its messages are kept, its key revoked)")
    .argument("<inboxId>")
    .action(async (id: string, _o, cmd: Command) => {
      const g = globalsOf(cmd);
      const r = await api(g, "DELETE", `/inboxes/${encodeURIComponent(id)}`);
      emit(g, r, () => `deleted inbox ${r.id}`);
    });
}
