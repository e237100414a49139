import type { Command } from "commander";
import { allPages, api } from "../api.ts";
import { globalsOf } from "../context.ts";
import { emit, fields, table } from "../output.ts";

interface KeySummary {
  id: string;
  prefix: string;
  name: string | null;
  workspaceId: string | null;
  createdAt: string;
}

/** `mam keys create|list|revoke`: a workspace's wk_ keys, with the tenant's tk_ key. */
export function registerKeys(program: Command): void {
  const keys = program.command("keys").description("issue, list and revoke a workspace's wk_ keys (tk_ key)");
  const path = (ws: string) => `/workspaces/${encodeURIComponent(ws)}/keys`;

  keys
    .command("create")
    .description("issue a wk_ key for a workspace (shown once)")
    .argument("<workspaceId>")
    .option("--name <name>", "what the key is for")
    .action(async (ws: string, o: { name?: string }, cmd: Command) => {
      const g = globalsOf(cmd);
      const k = await api(g, "POST", path(ws), { body: o.name ? { name: o.name } : {} });
      emit(g, k, () =>
        fields([
          ["key id", k.id],
          ["key", k.key],
          ["", "the key is shown this once: keep it"],
        ]),
      );
    });

  keys
    .command("list")
    .description("list a workspace's live keys (prefixes only)")
    .argument("<workspaceId>")
    .action(async (ws: string, _o, cmd: Command) => {
      const g = globalsOf(cmd);
      const all = await allPages<KeySummary>(g, path(ws), "keys");
      emit(g, { keys: all }, () =>
        table(all, [
          ["ID", (k) => k.id],
          ["PREFIX", (k) => k.prefix],
          ["NAME", (k) => k.name],
          ["CREATED", (k) => k.createdAt],
        ]),
      );
    });

  keys
    .command("revoke")
    .description("revoke a workspace key (refused on every gateway within a second)")
    .argument("<workspaceId>")
    .argument("<keyId>")
    .action(async (ws: string, keyId: string, _o, cmd: Command) => {
      const g = globalsOf(cmd);
      const r = await api(g, "DELETE", `${path(ws)}/${encodeURIComponent(keyId)}`);
      emit(g, r, () => `${r.revoked ? "revoked" : "already revoked"} key ${r.id}`);
    });
}
