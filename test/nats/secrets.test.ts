import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { connectBus } from "@mam/bus/connection.ts";
import { ensureEventsStream } from "@mam/bus/streams.ts";
import { loadConfig as billingConfig } from "@mam/billing/config.ts";
import { createBillingService } from "@mam/billing/service.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { PrivateNatsServer } from "@mam/testing/nats-server.ts";
import { ensureNatsSecrets, NATS_USERS, passwordFile, passwordVariable, SERVER_CONF_FILE, SERVER_DIR } from "../../scripts/nats-secrets.ts";

const SHIPPED = new URL("../../infra/nats/nats.conf", import.meta.url).pathname;
const silent = createLogger("test", "silent");
/** What compose gives nats-server when the operator set nothing: every variable, empty. */
const emptyEnv = Object.fromEntries(NATS_USERS.map((u) => [passwordVariable(u), ""]));

/**
 * docker-compose.yml's route, on a private nats-server: scripts/nats-secrets.ts writes the
 * passwords and nats-server.conf (their include, then the shipped nats.conf); nats-server
 * runs from the server directory alone (its own volume in compose); a service connects
 * with NATS_PASSWORD_FILE; a password set in the environment wins. The servers run one
 * after the other: nats.conf names the monitoring port.
 */
describe("NATS passwords generated for compose", () => {
  const root = mkdtempSync(join(tmpdir(), "nats-secrets-it-"));
  const iso = isolate();
  const servers: PrivateNatsServer[] = [];
  /** From a copy of the server directory only: nats needs nothing the services' volumes hold. */
  const startNats = async (dir: string, env: Record<string, string>) => {
    const mounted = join(root, `${dir.split("/").pop()}-nats`);
    cpSync(join(dir, SERVER_DIR), mounted, { recursive: true });
    const nats = new PrivateNatsServer({ config: join(mounted, SERVER_CONF_FILE), env });
    servers.push(nats);
    await nats.start();
    return nats;
  };
  /** Once only: the kit's stop() waits for an exit that a killed server already had. */
  const stopNats = async (nats: PrivateNatsServer) => {
    servers.splice(servers.indexOf(nats), 1);
    await nats.stop();
  };
  afterAll(async () => {
    for (const n of servers) await n.stop();
    await iso.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  it("runs a service with only NATS_USER and NATS_PASSWORD_FILE; no password, an empty one or another's is refused", async () => {
    const dir = join(root, "generated");
    await ensureNatsSecrets({ dir, natsConf: SHIPPED, env: {} });
    const nats = await startNats(dir, emptyEnv);
    // Identity, the one that may, declares the event stream billing reads.
    const identity = await connectBus({
      url: nats.url,
      prefix: "",
      name: "identity",
      logger: silent,
      user: "identity",
      passwordFile: passwordFile(dir, "identity"),
    });
    expect(identity.nc.info?.auth_required).toBe(true);
    await ensureEventsStream(identity);
    await identity.nc.close();
    // The operator's password is in the server directory, beside the configuration.
    const admin = await connect({ servers: nats.url, user: "admin", pass: (await readFile(passwordFile(dir, "admin"), "utf8")).trim() });
    await admin.close();

    const billing = createBillingService(
      billingConfig({
        ...iso.env,
        NATS_URL: nats.url,
        NATS_PREFIX: "",
        NATS_USER: "billing",
        NATS_PASSWORD: "",
        NATS_PASSWORD_FILE: passwordFile(dir, "billing"),
        DB_SCHEMA: iso.schema("billing"),
      }),
      silent,
    );
    try {
      await billing.start();
    } finally {
      await billing.destroy();
    }

    // The empty variables compose passes lose to the include: an empty password is no way in.
    await expect(connect({ servers: nats.url, user: "identity", pass: "" })).rejects.toThrow(/authorization violation/i);
    await expect(connect({ servers: nats.url })).rejects.toThrow(/authorization violation/i);
    await expect(
      connectBus({ url: nats.url, prefix: "", name: "identity", logger: silent, user: "identity", passwordFile: passwordFile(dir, "smtp-ingress") }),
    ).rejects.toThrow(/refused the credentials of user "identity"/);
    await stopNats(nats);
  });

  it("stops a service whose NATS_PASSWORD_FILE is missing or empty, naming it", async () => {
    const missing = join(root, "absent.password");
    await expect(
      connectBus({ url: "nats://127.0.0.1:1", prefix: "", name: "billing", logger: silent, user: "billing", passwordFile: missing }),
    ).rejects.toThrow(`NATS_PASSWORD_FILE ${missing} cannot be read (ENOENT)`);
    const empty = join(root, "empty.password");
    writeFileSync(empty, " \n");
    await expect(connectBus({ url: "nats://127.0.0.1:1", prefix: "", name: "billing", logger: silent, user: "billing", passwordFile: empty })).rejects.toThrow(
      `NATS_PASSWORD_FILE ${empty} is empty`,
    );
  });

  it("lets a password set in the environment win, for nats-server and the service alike", async () => {
    const dir = join(root, "overridden");
    const chosen = "fromSecretsManager7";
    const env = { ...emptyEnv, NATS_BILLING_PASSWORD: chosen };
    await ensureNatsSecrets({ dir, natsConf: SHIPPED, env });
    const nats = await startNats(dir, env);
    const generated = (await readFile(passwordFile(dir, "billing"), "utf8")).trim();

    // NATS_PASSWORD beats NATS_PASSWORD_FILE.
    const bus = await connectBus({
      url: nats.url,
      prefix: "",
      name: "billing",
      logger: silent,
      user: "billing",
      password: chosen,
      passwordFile: passwordFile(dir, "billing"),
    });
    await bus.nc.close();
    await expect(connect({ servers: nats.url, user: "billing", pass: generated })).rejects.toThrow(/authorization violation/i);
    // The others still use their generated files.
    const realtime = await connectBus({
      url: nats.url,
      prefix: "",
      name: "realtime",
      logger: silent,
      user: "realtime",
      passwordFile: passwordFile(dir, "realtime"),
    });
    await realtime.nc.close();
    await stopNats(nats);
  });
});
