import type { Command } from "commander";
import { api } from "../api.ts";
import { globalsOf } from "../context.ts";
import { TENANT_LIST } from "../operator.ts";
import { emit, fields, table } from "../output.ts";

interface Tenant {
  id: string;
  name: string;
  createdAt: string;
  defaultWorkspaceId: string;
}

/** `mam tenants create|list|rotate-key`: the operator's key (sa_), or a tenant's tk_ key for its own rotation. */
export function registerTenants(program: Command): void {
  const tenants = program.command("tenants").description("create, list and rotate the keys of tenants");

  tenants
    .command("create")
    .description("create a tenant with its Default workspace and tk_ key (operator key)")
    .argument("<name>", "the tenant's name")
    .action(async (name: string, _o, cmd: Command) => {
      const g = globalsOf(cmd);
      const r = await api(g, "POST", "/tenants", { body: { name } });
      emit(g, r, () =>
        fields([
          ["tenant", r.tenant.id],
          ["name", r.tenant.name],
          ["workspace", `${r.workspace.id} (${r.workspace.slug})`],
          ["key", r.key.key],
          ["", "the key is shown this once: keep it"],
        ]),
      );
    });

  tenants
    .command("list")
    .description("list every tenant, oldest first (operator key; asks identity over NATS)")
    .action(async (_o, cmd: Command) => {
      const g = globalsOf(cmd);
      // NATS and its settings are loaded by the commands that use them only: the others start faster.
      const { operatorRequest, withBus } = await import("../nats.ts");
      const all = await withBus(async (bus) => {
        const out: Tenant[] = [];
        let after: string | undefined;
        do {
          const page = await operatorRequest<{ tenants: Tenant[]; next: string | null }>(g, bus, TENANT_LIST, { limit: 1000, ...(after ? { after } : {}) });
          out.push(...page.tenants);
          after = page.next ?? undefined;
        } while (after);
        return out;
      });
      emit(g, { tenants: all }, () =>
        table(all, [
          ["ID", (t) => t.id],
          ["NAME", (t) => t.name],
          ["CREATED", (t) => t.createdAt],
          ["DEFAULT WORKSPACE", (t) => t.defaultWorkspaceId],
        ]),
      );
    });

  tenants
    .command("rotate-key")
    .description("revoke every tk_ key of a tenant and issue a new one (operator or the tenant's key); without a tenant, the calling tk_ key replaces itself")
    .argument("[tenantId]", "the tenant whose keys to replace")
    .action(async (tenantId: string | undefined, _o, cmd: Command) => {
      const g = globalsOf(cmd);
      const r = tenantId ? await api(g, "POST", `/tenants/${encodeURIComponent(tenantId)}/keys/rotate`) : await api(g, "POST", "/tenant/keys/rotate");
      emit(g, r, () =>
        fields([
          ["key id", r.id],
          ["key", r.key],
          ["", "the key is shown this once: the old tk_ keys no longer work"],
        ]),
      );
    });
}
