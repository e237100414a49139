import type { Command } from "commander";
import { allPages, api } from "../api.ts";
import { globalsOf } from "../context.ts";
import { emit, fields, table } from "../output.ts";

interface Workspace {
  id: string;
  name: string;
  slug: string;
  isDefault: boolean;
  inboxCount: number;
  domainCount: number;
  createdAt: string;
}

/** `mam workspaces create|list|delete`, with a tenant's tk_ key. */
export function registerWorkspaces(program: Command): void {
  const ws = program.command("workspaces").description("create, list and delete a tenant's workspaces (tk_ key)");

  ws.command("create")
    .description("create a workspace")
    .argument("<name>", "its name")
    .option("--slug <slug>", "its slug (default: from the name)")
    .action(async (name: string, o: { slug?: string }, cmd: Command) => {
      const g = globalsOf(cmd);
      const w = await api<Workspace>(g, "POST", "/workspaces", { body: { name, ...(o.slug ? { slug: o.slug } : {}) } });
      emit(g, w, () =>
        fields([
          ["workspace", w.id],
          ["name", w.name],
          ["slug", w.slug],
        ]),
      );
    });

  ws.command("list")
    .description("list the workspaces the key sees")
    .action(async (_o, cmd: Command) => {
      const g = globalsOf(cmd);
      const all = await allPages<Workspace>(g, "/workspaces", "workspaces");
      emit(g, { workspaces: all }, () =>
        table(all, [
          ["ID", (w) => w.id],
          ["NAME", (w) => w.name],
          ["SLUG", (w) => w.slug],
          ["DEFAULT", (w) => (w.isDefault ? "yes" : "")],
          ["INBOXES", (w) => w.inboxCount],
          ["DOMAINS", (w) => w.domainCount],
          ["CREATED", (w) => w.createdAt],
        ]),
      );
    });

  ws.command("delete")
    .description("delete a workspace (revokes its keys; its inboxes and domains go)")
    .argument("<workspaceId>")
    .action(async (id: string, _o, cmd: Command) => {
      const g = globalsOf(cmd);
      const r = await api(g, "DELETE", `/workspaces/${encodeURIComponent(id)}`);
      emit(g, r, () => `deleted workspace ${r.id}`);
    });
}
