import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createFileOnce } from "@mam/runtime/files.ts";

/** The gateway's key pair: it alone signs scope tokens. */
export interface SigningKeys {
  privateKeyPem: string;
  publicKeyPem: string;
}

/** A setting or key file that cannot give a usable key: the message names which and why. */
export class ScopeKeyError extends Error {
  override name = "ScopeKeyError";
}

export function generateScopeKeys(): SigningKeys {
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

function publicPemOf(value: string, what: string): string {
  const text = pem(value);
  if (text.includes("PRIVATE KEY")) throw new ScopeKeyError(`${what} holds a private key; only the gateway may have it`);
  try {
    return createPublicKey(text).export({ type: "spki", format: "pem" }).toString();
  } catch {
    throw new ScopeKeyError(`${what} is not a public key (PEM, or PEM in base64)`);
  }
}

function signingKeysOf(privatePem: string, what: string): SigningKeys {
  try {
    const priv = createPrivateKey(privatePem);
    return {
      privateKeyPem: priv.export({ type: "pkcs8", format: "pem" }).toString(),
      publicKeyPem: createPublicKey(priv).export({ type: "spki", format: "pem" }).toString(),
    };
  } catch {
    throw new ScopeKeyError(`${what} is not an Ed25519 private key (PEM, or PEM in base64)`);
  }
}

export interface SigningKeyOptions {
  /** SCOPE_PRIVATE_KEY: when set, no file is read or written. */
  privateKey?: string;
  /** SCOPE_PUBLIC_KEY: when set beside the private key, it must be its pair. */
  publicKey?: string;
  /** SCOPE_KEY_FILE: the private key, created once (mode 0600) when absent. */
  keyFile: string;
  /** SCOPE_PUBLIC_KEY_FILE: written from the private key for the services that verify. */
  publicKeyFile: string;
}

/**
 * The gateway's signing keys. From SCOPE_PRIVATE_KEY when set (production); otherwise from
 * a key file created once atomically (first writer wins, so two gateways of one machine
 * agree), beside which the public key is written for the other services to read. The
 * private key file is read by the gateway and nothing else.
 */
export function loadSigningKeys(o: SigningKeyOptions): SigningKeys {
  const source = o.privateKey ? "SCOPE_PRIVATE_KEY" : `the key file ${o.keyFile}`;
  const keys = signingKeysOf(o.privateKey ? pem(o.privateKey) : readOrCreatePrivateKeyFile(o.keyFile), source);
  // The services would verify with it: a gateway signing with another key would be refused everywhere.
  if (o.publicKey && publicPemOf(o.publicKey, "SCOPE_PUBLIC_KEY") !== keys.publicKeyPem) {
    throw new ScopeKeyError(`SCOPE_PUBLIC_KEY is not the public half of ${source}`);
  }
  if (!o.privateKey) publishPublicKey(o.publicKeyFile, keys.publicKeyPem);
  return keys;
}

/**
 * The private key file's PEM. A file of the earlier format (JSON holding both keys) is
 * read as it is, so an existing installation keeps its key.
 */
function readOrCreatePrivateKeyFile(file: string): string {
  const existing = readIfPresent(file);
  if (existing !== undefined) return privatePemOfFile(existing, file);
  return privatePemOfFile(createFileOnce(file, generateScopeKeys().privateKeyPem, 0o600), file);
}

function privatePemOfFile(text: string, file: string): string {
  if (!text.trimStart().startsWith("{")) return text;
  const legacy = JSON.parse(text) as { privateKeyPem?: unknown };
  if (typeof legacy.privateKeyPem !== "string") throw new ScopeKeyError(`the key file ${file} holds no private key`);
  return legacy.privateKeyPem;
}

/** Written whole then renamed into place, so a reader never sees half a key. */
function publishPublicKey(file: string, publicKeyPem: string): void {
  if (readIfPresent(file) === publicKeyPem) return;
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  writeFileSync(tmp, publicKeyPem, { mode: 0o644 });
  // The umask may have narrowed it: the other services, maybe other users, must read it.
  chmodSync(tmp, 0o644);
  renameSync(tmp, file);
}

function readIfPresent(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    return undefined;
  }
}

export interface PublicKeyOptions {
  /** SCOPE_PUBLIC_KEY: when set, no file is read. */
  publicKey?: string;
  /** SCOPE_PUBLIC_KEY_FILE: written by the gateway when it creates the key pair. */
  publicKeyFile: string;
  /** How long to wait for the gateway to write the file (SCOPE_PUBLIC_KEY_WAIT_S). */
  waitMs: number;
  pollMs?: number;
  /** Told once, when the file is not there yet. */
  onWait?: (file: string) => void;
}

/**
 * The public key a verifying service checks tokens with, and nothing else. A service
 * started before the gateway waits, within a bound, for the gateway to write the file.
 */
export async function loadPublicKey(o: PublicKeyOptions): Promise<string> {
  if (o.publicKey) return publicPemOf(o.publicKey, "SCOPE_PUBLIC_KEY");
  const deadline = Date.now() + o.waitMs;
  let told = false;
  for (;;) {
    const text = readIfPresent(o.publicKeyFile);
    if (text !== undefined) return publicPemOf(text, `the public key file ${o.publicKeyFile}`);
    if (Date.now() >= deadline) {
      throw new ScopeKeyError(
        `no scope public key at ${o.publicKeyFile} after ${Math.round(o.waitMs / 1000)} s: the gateway writes it when it creates the key pair ` +
          "(start the gateway with the same SCOPE_PUBLIC_KEY_FILE), or set SCOPE_PUBLIC_KEY",
      );
    }
    if (!told) o.onWait?.(o.publicKeyFile);
    told = true;
    await sleep(Math.min(o.pollMs ?? 250, Math.max(1, deadline - Date.now())));
  }
}
