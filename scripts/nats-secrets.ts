/**
 * NATS passwords for `docker compose up` with no setup: run once before nats and the
 * services (the `nats-secrets` service of docker-compose.yml), it creates what is missing
 * under the secrets directory and never replaces a password that exists.
 *
 *   <dir>/<user>/password            one per service user of infra/nats/nats.conf, mode 0600;
 *                                    the service reads it through NATS_PASSWORD_FILE
 *   <dir>/server/admin.password      the operator's (the nats CLI)
 *   <dir>/server/nats-passwords.conf the variables nats.conf reads (NATS_IDENTITY_PASSWORD: "...")
 *   <dir>/server/nats-server.conf    what nats-server runs: that include, then the shipped nats.conf
 *
 * One directory per reader because in compose each is its own volume: a service mounts only
 * its own, nats only server/. The containers all run as the same user, so a file's mode
 * cannot keep one service from another's password; only what is mounted can.
 *
 * A password the operator sets in the environment (NATS_IDENTITY_PASSWORD, ...) wins: its
 * variable is left out of nats-passwords.conf (a definition there would beat the
 * environment), so nats-server reads it from its own environment, and the service from
 * NATS_PASSWORD. The two .conf files are derived, so they are rewritten on every run.
 *
 *   node --import tsx scripts/nats-secrets.ts [--dir /out] [--nats-conf /etc/nats/nats.conf]
 */
import { randomBytes, randomInt } from "node:crypto";
import { constants } from "node:fs";
import { chmod, link, mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The users of infra/nats/nats.conf; admin is the operator's (the nats CLI). */
export const NATS_USERS = ["identity", "mailbox", "gateway", "smtp-ingress", "billing", "realtime", "admin"] as const;
export type NatsUser = (typeof NATS_USERS)[number];

/** nats-server parses a variable's value as a config value: a letter first, then letters and digits. */
export const PASSWORD_PATTERN = /^[A-Za-z][A-Za-z0-9]*$/;
const LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ALNUM = `${LETTERS}0123456789`;
/** 1 letter and 31 letters or digits: about 190 bits. */
export const PASSWORD_LENGTH = 32;

export const passwordVariable = (user: NatsUser) => `NATS_${user.toUpperCase().replace(/-/g, "_")}_PASSWORD`;
/** The directory nats-server reads: the include, its configuration and the operator's password. */
export const SERVER_DIR = "server";
export const INCLUDE_FILE = "nats-passwords.conf";
export const SERVER_CONF_FILE = "nats-server.conf";
/** The directory that holds `user`'s password, and nothing another reader may see. */
export const secretDir = (dir: string, user: NatsUser) => join(dir, user === "admin" ? SERVER_DIR : user);
export const passwordFile = (dir: string, user: NatsUser) => join(secretDir(dir, user), user === "admin" ? "admin.password" : "password");
export const serverFile = (dir: string, name: typeof INCLUDE_FILE | typeof SERVER_CONF_FILE) => join(dir, SERVER_DIR, name);

/** `pick(n)` returns a uniform integer in [0, n): crypto.randomInt unless a test gives its own. */
export function generatePassword(pick: (n: number) => number = randomInt): string {
  let out = LETTERS[pick(LETTERS.length)]!;
  while (out.length < PASSWORD_LENGTH) out += ALNUM[pick(ALNUM.length)]!;
  return out;
}

export class SecretsError extends Error {
  override name = "SecretsError";
}

export interface EnsureOptions {
  /** The root of the per-reader directories (/out in compose, each of them a volume). */
  dir: string;
  /** The shipped nats.conf: copied after the include into nats-server.conf. */
  natsConf: string;
  /** The operator's environment: a non-empty NATS_<USER>_PASSWORD wins over the generated one. */
  env: Record<string, string | undefined>;
}

export interface EnsureResult {
  created: NatsUser[];
  kept: NatsUser[];
  /** Users whose password comes from the environment (left out of the include). */
  fromEnv: NatsUser[];
}

export async function ensureNatsSecrets(o: EnsureOptions): Promise<EnsureResult> {
  const shipped = await readFile(o.natsConf, "utf8").catch((err: NodeJS.ErrnoException) => {
    throw new SecretsError(`cannot read the NATS configuration ${o.natsConf}: ${err.code ?? err.message}`);
  });
  // In compose each directory is a volume's mount point, so it exists already.
  for (const user of NATS_USERS) await mkdir(secretDir(o.dir, user), { recursive: true, mode: 0o700 });
  const result: EnsureResult = { created: [], kept: [], fromEnv: [] };
  const definitions: string[] = [];
  for (const user of NATS_USERS) {
    const variable = passwordVariable(user);
    const { password, created } = await ensurePasswordFile(passwordFile(o.dir, user));
    result[created ? "created" : "kept"].push(user);
    const given = o.env[variable];
    if (given) {
      if (!PASSWORD_PATTERN.test(given))
        throw new SecretsError(`${variable} must be letters and digits, starting with a letter (nats-server reads it as a config value)`);
      result.fromEnv.push(user);
      continue;
    }
    // A variable nats.conf does not use would stop nats-server ("unknown field").
    if (new RegExp(`\\$${variable}\\b`).test(shipped)) definitions.push(`${variable}: "${password}"`);
  }
  await replaceFile(
    serverFile(o.dir, INCLUDE_FILE),
    `# Generated by scripts/nats-secrets.ts on every start, from the password files.\n${definitions.join("\n")}\n`,
    0o600,
  );
  await replaceFile(
    serverFile(o.dir, SERVER_CONF_FILE),
    `# Generated by scripts/nats-secrets.ts: the passwords, then infra/nats/nats.conf as shipped.\ninclude ./${INCLUDE_FILE}\n\n${shipped}`,
    0o644,
  );
  return result;
}

/** The password in `path`, created first if absent; an existing one is never replaced. */
async function ensurePasswordFile(path: string): Promise<{ password: string; created: boolean }> {
  let created = false;
  const existing = await readIfExists(path);
  if (existing === undefined) {
    // Complete in a private file first, then linked into place: link never replaces, so of
    // two runs at once the first wins and the other reads the winner's password.
    const tmp = await writeTemp(path, `${generatePassword()}\n`, 0o600);
    try {
      await link(tmp, path);
      created = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    } finally {
      await unlink(tmp);
    }
  }
  const password = (existing ?? (await readFile(path, "utf8"))).trim();
  if (!PASSWORD_PATTERN.test(password)) {
    throw new SecretsError(`${path} must hold one password of letters and digits, starting with a letter; fix or delete it (a deleted one is generated again)`);
  }
  return { password, created };
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

async function writeTemp(path: string, content: string, mode: number): Promise<string> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  // The mode given to open is masked by the umask; the one asked for is the one meant.
  await chmod(tmp, mode);
  return tmp;
}

/** A derived file: written whole beside it, then renamed over the old one (readers never see half). */
async function replaceFile(path: string, content: string, mode: number): Promise<void> {
  const tmp = await writeTemp(path, content, mode);
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

function argument(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const value = process.argv[i + 1];
  if (!value || value.startsWith("--")) throw new SecretsError(`${name} needs a value`);
  return value;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    const dir = argument("--dir", "/out");
    const r = await ensureNatsSecrets({ dir, natsConf: argument("--nats-conf", "/etc/nats/nats.conf"), env: process.env });
    // Names only: never a password in a log.
    const parts = [
      r.created.length ? `created ${r.created.join(", ")}` : "",
      r.kept.length ? `kept ${r.kept.join(", ")}` : "",
      r.fromEnv.length ? `from the environment: ${r.fromEnv.join(", ")}` : "",
    ];
    process.stdout.write(`NATS passwords in ${dir}: ${parts.filter(Boolean).join("; ")}\n`);
  } catch (err) {
    process.stderr.write(`nats-secrets: ${err instanceof SecretsError ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
