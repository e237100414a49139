import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig as billingConfig } from "@mam/billing/config.ts";
import { loadConfig as gatewayConfig } from "@mam/gateway/config.ts";
import { GatewayService } from "@mam/gateway/service.ts";
import { loadConfig as identityConfig } from "@mam/identity/config.ts";
import { IdentityService } from "@mam/identity/service.ts";
import { loadConfig as mailboxConfig } from "@mam/mailbox/config.ts";
import { loadConfig as realtimeConfig } from "@mam/realtime/config.ts";
import { ConfigError } from "@mam/runtime/config.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { loadConfig as smtpConfig } from "@mam/smtp-ingress/config.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

const verifying = { identity: identityConfig, mailbox: mailboxConfig, "smtp-ingress": smtpConfig, billing: billingConfig, realtime: realtimeConfig };

/** Only the gateway holds the private key; every other service verifies with the public one. */
describe("scope keys: the gateway signs, the others only verify", () => {
  const s = new Stack({ mailbox: false });
  let dir: string;
  let files: { SCOPE_KEY_FILE: string; SCOPE_PUBLIC_KEY_FILE: string };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "scope-split-"));
    files = { SCOPE_KEY_FILE: join(dir, "gateway", "scope-key.pem"), SCOPE_PUBLIC_KEY_FILE: join(dir, "shared", "scope-key.pub.pem") };
  });
  afterAll(async () => {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("every service but the gateway refuses SCOPE_PRIVATE_KEY, and its configuration holds no private key", () => {
    const env = { ...s.iso.env, MAIL_DOMAIN: s.mailDomain, SCOPE_PRIVATE_KEY: Buffer.from(s.iso.scopeKeys.privateKeyPem).toString("base64") };
    for (const [name, load] of Object.entries(verifying)) {
      expect(() => load(env), name).toThrow(ConfigError);
      expect(() => load(env), name).toThrow(/SCOPE_PRIVATE_KEY: only the gateway holds the scope private key/);
      const cfg = load({ ...env, SCOPE_PRIVATE_KEY: "", SCOPE_KEY_FILE: files.SCOPE_KEY_FILE }) as Record<string, unknown>;
      expect(cfg.SCOPE_PRIVATE_KEY, name).toBeUndefined();
      // Not even where the private key lives.
      expect(
        Object.keys(cfg).filter((k) => k === "SCOPE_KEY_FILE"),
        name,
      ).toEqual([]);
      expect(JSON.stringify(cfg), name).not.toContain(s.iso.scopeKeys.privateKeyPem.split("\n")[1]);
    }
    expect(gatewayConfig(env).SCOPE_PRIVATE_KEY).toBeDefined();
  });

  it("a service that finds no public key fails after its bound, naming the file and the gateway", async () => {
    const cfg = identityConfig({
      ...s.identityEnv(),
      SCOPE_PUBLIC_KEY: "",
      SCOPE_PUBLIC_KEY_FILE: join(dir, "nobody", "writes.pem"),
      SCOPE_PUBLIC_KEY_WAIT_S: "0",
    });
    const lonely = new IdentityService(cfg, { logger: createLogger("identity", "silent") });
    await expect(lonely.start()).rejects.toThrow(ConfigError);
    await expect(new IdentityService(cfg, { logger: createLogger("identity", "silent") }).start()).rejects.toThrow(
      /no scope public key at .*nobody\/writes\.pem after 0 s: the gateway writes it/,
    );
  });

  it("identity started before the gateway waits for the public key file the gateway creates, then serves", async () => {
    const cfg = identityConfig({ ...s.identityEnv(), SCOPE_PUBLIC_KEY: "", SCOPE_PUBLIC_KEY_FILE: files.SCOPE_PUBLIC_KEY_FILE, SCOPE_PUBLIC_KEY_WAIT_S: "60" });
    s.identity = new IdentityService(cfg, { logger: createLogger("identity", "info", s.logs) });
    const starting = s.identity.start();
    await waitFor(() => s.logs.text().includes("waiting for the scope public key file"), { timeoutMs: 10_000, what: "identity's waiting line" });
    const waiting = s.logs.entries().find((e) => String(e.msg).startsWith("waiting for the scope public key file"));
    expect(waiting).toMatchObject({ file: files.SCOPE_PUBLIC_KEY_FILE, msg: expect.stringContaining("the gateway creates it") });

    const g = new GatewayService(gatewayConfig({ ...s.iso.env, SCOPE_PUBLIC_KEY: "", ...files }), { logger: createLogger("gateway", "warn", s.logs) });
    s.gateways.push(g);
    await g.start();
    await starting;

    expect(statSync(files.SCOPE_KEY_FILE).mode & 0o777).toBe(0o600);
    expect(readFileSync(files.SCOPE_PUBLIC_KEY_FILE, "utf8")).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(readFileSync(files.SCOPE_PUBLIC_KEY_FILE, "utf8")).not.toContain("PRIVATE");
    // Tokens minted with the gateway's new private key verify at identity with the public file.
    s.api = s.client(0);
    const t = await provisionTenant(s, "Split");
    expect((await s.api("GET", `/v1/workspaces/${t.workspace.id}`, { key: t.key.key })).status).toBe(200);
  });
});
