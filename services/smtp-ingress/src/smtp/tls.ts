import { mkdirSync, readFileSync, writeFileSync, linkSync, unlinkSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { dirname } from "node:path";
import { generate } from "selfsigned";

export interface TlsMaterial {
  key: string;
  cert: string;
}

/** The configured certificate, or a self-signed one made at the first start and kept on disk. */
export async function tlsMaterial(o: { cert?: string; key?: string; file: string; hostname: string }): Promise<TlsMaterial> {
  if (o.cert && o.key) {
    const read = (v: string) => (v.includes("-----BEGIN") ? v : readFileSync(v, "utf8"));
    return { cert: read(o.cert), key: read(o.key) };
  }
  try {
    return JSON.parse(readFileSync(o.file, "utf8")) as TlsMaterial;
  } catch {
    // made below
  }
  const pems = await generate([{ name: "commonName", value: o.hostname }], {
    keySize: 2048,
    notAfterDate: new Date(Date.now() + 825 * 86_400_000),
    algorithm: "sha256",
  });
  mkdirSync(dirname(o.file), { recursive: true, mode: 0o700 });
  const tmp = `${o.file}.${randomBytes(6).toString("hex")}.tmp`;
  writeFileSync(tmp, JSON.stringify({ key: pems.private, cert: pems.cert }), { mode: 0o600 });
  try {
    linkSync(tmp, o.file);
  } catch {
    // another process made it first: use theirs
  } finally {
    unlinkSync(tmp);
  }
  return JSON.parse(readFileSync(o.file, "utf8")) as TlsMaterial;
}
