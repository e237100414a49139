import { mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { generateScopeKeys, loadPublicKey, loadSigningKeys, ScopeKeyError } from "./key-material.ts";
import { ScopeSigner, ScopeVerifier } from "./token.ts";

const p = {
  keyId: "0190a1a2-0000-7000-8000-000000000001",
  kind: "tenant" as const,
  tenantId: "0190a1a2-0000-7000-8000-000000000002",
  workspaceId: null,
  inboxId: null,
};
const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("the gateway's key files", () => {
  let dir: string;
  let files: { keyFile: string; publicKeyFile: string };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "scope-keys-"));
    files = { keyFile: join(dir, "private", "scope-key.pem"), publicKeyFile: join(dir, "public", "scope-key.pub.pem") };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("creates the private key file (0600) and writes the public key beside it for the verifying services (0644)", () => {
    const keys = loadSigningKeys(files);
    expect(statSync(files.keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(files.publicKeyFile).mode & 0o777).toBe(0o644);
    const published = readFileSync(files.publicKeyFile, "utf8");
    expect(published).toBe(keys.publicKeyPem);
    expect(published).not.toContain("PRIVATE");
    // What the public file holds verifies what the private key signs.
    const token = new ScopeSigner(keys.privateKeyPem).mint(p, ["identity"]);
    expect(new ScopeVerifier(published, "identity").verify(token).kid).toBe(p.keyId);
  });

  it("keeps the pair across starts, and writes the public key again if it went missing", () => {
    const first = loadSigningKeys(files);
    unlinkSync(files.publicKeyFile);
    expect(loadSigningKeys(files)).toEqual(first);
    expect(readFileSync(files.publicKeyFile, "utf8")).toBe(first.publicKeyPem);
  });

  it("refuses a SCOPE_PUBLIC_KEY that is not the key file's pair (the services would refuse every token)", () => {
    const keys = loadSigningKeys(files);
    expect(loadSigningKeys({ ...files, publicKey: keys.publicKeyPem })).toEqual(keys);
    expect(() => loadSigningKeys({ ...files, publicKey: generateScopeKeys().publicKeyPem })).toThrow(/SCOPE_PUBLIC_KEY is not the public half of the key file/);
  });

  it("reads a key file of the earlier format (JSON holding both keys)", () => {
    const legacy = generateScopeKeys();
    writeFileSync(files.keyFile.replace("private/", ""), JSON.stringify(legacy), { mode: 0o600 });
    const keys = loadSigningKeys({ ...files, keyFile: files.keyFile.replace("private/", "") });
    expect(keys.publicKeyPem).toBe(legacy.publicKeyPem);
  });

  it("from SCOPE_PRIVATE_KEY, touches no file, and refuses a SCOPE_PUBLIC_KEY that is not its pair", () => {
    const given = generateScopeKeys();
    expect(loadSigningKeys({ ...files, privateKey: b64(given.privateKeyPem), publicKey: b64(given.publicKeyPem) })).toEqual(given);
    expect(() => statSync(files.keyFile)).toThrow();
    expect(() => statSync(files.publicKeyFile)).toThrow();
    expect(() => loadSigningKeys({ ...files, privateKey: given.privateKeyPem, publicKey: generateScopeKeys().publicKeyPem })).toThrow(
      /SCOPE_PUBLIC_KEY is not the public half of SCOPE_PRIVATE_KEY/,
    );
    expect(() => loadSigningKeys({ ...files, privateKey: "garbage" })).toThrow(ScopeKeyError);
  });
});

describe("a verifying service's public key", () => {
  let dir: string;
  let publicKeyFile: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "scope-pub-"));
    publicKeyFile = join(dir, "scope-key.pub.pem");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("is SCOPE_PUBLIC_KEY when set; a private key there is refused", async () => {
    const keys = generateScopeKeys();
    expect(await loadPublicKey({ publicKey: b64(keys.publicKeyPem), publicKeyFile, waitMs: 0 })).toBe(keys.publicKeyPem);
    await expect(loadPublicKey({ publicKey: b64(keys.privateKeyPem), publicKeyFile, waitMs: 0 })).rejects.toThrow(/private key; only the gateway/);
  });

  it("is waited for until the gateway writes it, saying once which file and who creates it", async () => {
    const waits: string[] = [];
    const loading = loadPublicKey({ publicKeyFile, waitMs: 10_000, pollMs: 20, onWait: (f) => waits.push(f) });
    const keys = loadSigningKeys({ keyFile: join(dir, "scope-key.pem"), publicKeyFile });
    expect(await loading).toBe(keys.publicKeyPem);
    expect(waits).toEqual([publicKeyFile]);
  });

  it("fails after the bound with a message naming the file and the gateway", async () => {
    await expect(loadPublicKey({ publicKeyFile, waitMs: 50, pollMs: 10 })).rejects.toThrow(
      new RegExp(`no scope public key at ${publicKeyFile} after 0 s: the gateway writes it`),
    );
  });

  it("refuses a file that holds a private key", async () => {
    writeFileSync(publicKeyFile, generateScopeKeys().privateKeyPem);
    await expect(loadPublicKey({ publicKeyFile, waitMs: 0 })).rejects.toThrow(/holds a private key/);
  });
});
