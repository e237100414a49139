import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { Stack } from "../support/stack.ts";
import { mam } from "./run-cli.ts";

/** `mam tenants …` run as processes against a started platform (independent runs side by side: each costs a process start). */
describe("mam tenants", () => {
  const s = new Stack({ logLevel: "warn" });
  beforeAll(() => s.start());
  afterAll(() => s.stop());

  it("creates a tenant, lists it, rotates its key: the old key refused, the new one accepted", { timeout: 90_000 }, async () => {
    const op = { MAM_KEY: s.operatorKey };
    const created = await mam(s, ["--json", "tenants", "create", "Acme Robots"], op);
    expect(created.code, created.stderr).toBe(0);
    const { tenant, key } = created.json;
    expect(key.key).toMatch(/^tk_/);

    const [listed, rotated] = await Promise.all([mam(s, ["tenants", "list"], op), mam(s, ["tenants", "rotate-key", tenant.id, "--json"], op)]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/^ID\s+NAME\s+CREATED\s+DEFAULT WORKSPACE$/m);
    expect(listed.stdout).toMatch(new RegExp(`^${tenant.id}\\s+Acme Robots\\s+\\S+\\s+${created.json.workspace.id}$`, "m"));
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.json.key).toMatch(/^tk_/);
    // Every gateway drops a revoked key within a second.
    await waitFor(async () => (await s.api("GET", "/v1/workspaces", { key: key.key })).status === 401, { timeoutMs: 5_000 });

    const [old, fresh, forbidden, json] = await Promise.all([
      mam(s, ["workspaces", "list", "--key", key.key]),
      mam(s, ["workspaces", "list", "--key", rotated.json.key]),
      // Only the operator lists tenants: the service's refusal, as the CLI prints it.
      mam(s, ["tenants", "list", "--key", rotated.json.key]),
      mam(s, ["tenants", "list", "--json"], op),
    ]);
    expect(old.code).toBe(1);
    expect(old.stderr).toMatch(/^error: .+ \(UNAUTHORIZED\)\n$/);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stdout).toMatch(/^ID\s+NAME\s+SLUG\s+DEFAULT\s+INBOXES\s+DOMAINS\s+CREATED$/m);
    expect(fresh.stdout).toMatch(new RegExp(`^${created.json.workspace.id}\\s+Default\\s+default\\s+yes\\s+0\\s+0\\s`, "m"));
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toBe("error: Only the operator key (sa_) may do this (FORBIDDEN)\n");
    expect(json.json.tenants).toEqual([{ id: tenant.id, name: "Acme Robots", createdAt: tenant.createdAt, defaultWorkspaceId: created.json.workspace.id }]);
  });
});
