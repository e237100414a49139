import { generateKeyPairSync, createPrivateKey, createPublicKey } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync, linkSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { randomBytes } from "node:crypto";

export interface ScopeKeys {
  publicKeyPem: string;
  /** Present only where tokens are minted (the gateway), or in the local default key file. */
  privateKeyPem?: string;
}

export function generateScopeKeys(): Required<ScopeKeys> {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/** Accepts PEM text, or PEM encoded in base64 (easier to pass through env files). */
function pem(value: string): string {
  return value.includes("-----BEGIN") ? value : Buffer.from(value, "base64").toString("utf8");
}

/**
 * Key material from the environment when given; otherwise a key file shared by the
 * processes of one machine, created once atomically (first writer wins), so a local
 * start or a compose volume needs no setup. Production sets the variables instead.
 */
export function loadScopeKeys(opts: { privateKey?: string; publicKey?: string; keyFile: string }): ScopeKeys {
  if (opts.privateKey) {
    const priv = createPrivateKey(pem(opts.privateKey));
    return {
      privateKeyPem: priv.export({ type: "pkcs8", format: "pem" }).toString(),
      publicKeyPem: createPublicKey(priv).export({ type: "spki", format: "pem" }).toString(),
    };
  }
  if (opts.publicKey) return { publicKeyPem: createPublicKey(pem(opts.publicKey)).export({ type: "spki", format: "pem" }).toString() };
  return readOrCreateKeyFile(opts.keyFile);
}

function readOrCreateKeyFile(file: string): Required<ScopeKeys> {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Required<ScopeKeys>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  writeFileSync(tmp, JSON.stringify(generateScopeKeys()), { mode: 0o600 });
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  } finally {
    unlinkSync(tmp);
  }
  return JSON.parse(readFileSync(file, "utf8")) as Required<ScopeKeys>;
}
