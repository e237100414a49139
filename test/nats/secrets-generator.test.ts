import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  ensureNatsSecrets,
  generatePassword,
  INCLUDE_FILE,
  NATS_USERS,
  PASSWORD_LENGTH,
  passwordFile,
  SERVER_CONF_FILE,
  SERVER_DIR,
  secretDir,
  serverFile,
} from "../../scripts/nats-secrets.ts";

const SHIPPED = new URL("../../infra/nats/nats.conf", import.meta.url).pathname;

/** The generator of scripts/nats-secrets.ts: what it writes, and that it never replaces a password. */
describe("NATS secrets generator", () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), "nats-secrets-"));
    dirs.push(d);
    return join(d, "nats");
  };
  const passwords = (dir: string) => Object.fromEntries(NATS_USERS.map((u) => [u, readFileSync(passwordFile(dir, u), "utf8").trim()]));
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("makes passwords of letters and digits that start with a letter", () => {
    for (let i = 0; i < 500; i++) expect(generatePassword()).toMatch(new RegExp(`^[A-Za-z][A-Za-z0-9]{${PASSWORD_LENGTH - 1}}$`));
    // The highest draw is the last letter first, the last digit after: a digit never leads.
    expect(generatePassword((n) => n - 1)).toBe(`z${"9".repeat(PASSWORD_LENGTH - 1)}`);
    expect(generatePassword(() => 0)).toBe("A".repeat(PASSWORD_LENGTH));
  });

  it("creates one 0600 file per user once, and keeps them on every later run", async () => {
    const dir = tempDir();
    const first = await ensureNatsSecrets({ dir, natsConf: SHIPPED, env: {} });
    expect(first.created).toEqual([...NATS_USERS]);
    const before = passwords(dir);
    expect(new Set(Object.values(before)).size).toBe(NATS_USERS.length);
    for (const u of NATS_USERS) expect(statSync(passwordFile(dir, u)).mode & 0o777).toBe(0o600);
    expect(statSync(serverFile(dir, INCLUDE_FILE)).mode & 0o777).toBe(0o600);

    const second = await ensureNatsSecrets({ dir, natsConf: SHIPPED, env: {} });
    expect(second).toEqual({ created: [], kept: [...NATS_USERS], fromEnv: [] });
    expect(passwords(dir)).toEqual(before);
    // The include defines every variable nats.conf reads, with the files' passwords.
    const include = readFileSync(serverFile(dir, INCLUDE_FILE), "utf8");
    for (const u of NATS_USERS) expect(include).toContain(`: "${before[u]}"`);
    const server = readFileSync(serverFile(dir, SERVER_CONF_FILE), "utf8");
    expect(server).toContain(`include ./${INCLUDE_FILE}\n`);
    expect(server.endsWith(readFileSync(SHIPPED, "utf8"))).toBe(true);
  });

  it("gives each service a directory of its own with its password alone; only the server's holds the others", async () => {
    const dir = tempDir();
    await ensureNatsSecrets({ dir, natsConf: SHIPPED, env: {} });
    const all = passwords(dir);
    const services = NATS_USERS.filter((u) => u !== "admin");
    // Each directory is one compose volume, mounted by one container: what it holds is what that container can read.
    expect(readdirSync(dir).sort()).toEqual([...services, SERVER_DIR].sort());
    for (const u of services) {
      expect(secretDir(dir, u)).toBe(join(dir, u));
      expect(readdirSync(secretDir(dir, u)), u).toEqual(["password"]);
      expect(statSync(secretDir(dir, u)).mode & 0o777).toBe(0o700);
    }
    expect(readdirSync(join(dir, SERVER_DIR)).sort()).toEqual(["admin.password", INCLUDE_FILE, SERVER_CONF_FILE].sort());
    expect(passwordFile(dir, "admin")).toBe(join(dir, SERVER_DIR, "admin.password"));
    // The include names every password but the operator's: nats.conf reads admin's too.
    const include = readFileSync(serverFile(dir, INCLUDE_FILE), "utf8");
    for (const u of NATS_USERS) expect(include, u).toContain(`: "${all[u]}"`);
    // The server configuration includes by a relative path, so the server directory works wherever it is mounted.
    expect(readFileSync(serverFile(dir, SERVER_CONF_FILE), "utf8")).toMatch(new RegExp(`^include \\./${INCLUDE_FILE.replace(".", "\\.")}$`, "m"));
  });

  it("keeps a password that exists and fills in only the missing ones", async () => {
    const dir = tempDir();
    await ensureNatsSecrets({ dir, natsConf: SHIPPED, env: {} });
    writeFileSync(passwordFile(dir, "billing"), "chosenByHand42\n");
    rmSync(passwordFile(dir, "realtime"));
    const r = await ensureNatsSecrets({ dir, natsConf: SHIPPED, env: {} });
    expect(r.created).toEqual(["realtime"]);
    expect(readFileSync(passwordFile(dir, "billing"), "utf8")).toBe("chosenByHand42\n");
    expect(readFileSync(serverFile(dir, INCLUDE_FILE), "utf8")).toContain('NATS_BILLING_PASSWORD: "chosenByHand42"');
  });

  it("agrees with a run at the same time: each password created once, both see the same", async () => {
    const dir = tempDir();
    const [a, b] = await Promise.all([ensureNatsSecrets({ dir, natsConf: SHIPPED, env: {} }), ensureNatsSecrets({ dir, natsConf: SHIPPED, env: {} })]);
    expect([...a.created, ...b.created].sort()).toEqual([...NATS_USERS].sort());
    const include = readFileSync(serverFile(dir, INCLUDE_FILE), "utf8");
    for (const [u, p] of Object.entries(passwords(dir))) expect(include, u).toContain(`: "${p}"`);
  });

  it("leaves a password set in the environment out of the include, and refuses one nats-server would misread", async () => {
    const dir = tempDir();
    const r = await ensureNatsSecrets({ dir, natsConf: SHIPPED, env: { NATS_BILLING_PASSWORD: "fromSecretsManager1", NATS_MAILBOX_PASSWORD: "" } });
    expect(r.fromEnv).toEqual(["billing"]);
    const include = readFileSync(serverFile(dir, INCLUDE_FILE), "utf8");
    expect(include).not.toContain("NATS_BILLING_PASSWORD");
    expect(include).not.toContain("fromSecretsManager1");
    // Empty means unset, as in compose: the generated one is defined.
    expect(include).toContain("NATS_MAILBOX_PASSWORD:");
    await expect(ensureNatsSecrets({ dir, natsConf: SHIPPED, env: { NATS_ADMIN_PASSWORD: "1starts with a digit" } })).rejects.toThrow(
      /NATS_ADMIN_PASSWORD must be letters and digits, starting with a letter/,
    );
  });

  it("defines only the variables the configuration reads, and refuses a damaged password file", async () => {
    const dir = tempDir();
    const conf = join(dir, "..", "only-identity.conf");
    writeFileSync(conf, "authorization { users: [ { user: identity, password: $NATS_IDENTITY_PASSWORD } ] }\n");
    await ensureNatsSecrets({ dir, natsConf: conf, env: {} });
    const include = readFileSync(serverFile(dir, INCLUDE_FILE), "utf8");
    expect(include.match(/^NATS_\w+_PASSWORD:/gm)).toEqual(["NATS_IDENTITY_PASSWORD:"]);

    writeFileSync(passwordFile(dir, "gateway"), "");
    await expect(ensureNatsSecrets({ dir, natsConf: conf, env: {} })).rejects.toThrow(/gateway\/password must hold one password/);
    expect(readFileSync(passwordFile(dir, "gateway"), "utf8")).toBe("");
    await expect(ensureNatsSecrets({ dir, natsConf: join(dir, "missing.conf"), env: {} })).rejects.toThrow(
      /cannot read the NATS configuration .*missing\.conf: ENOENT/,
    );
  });
});
