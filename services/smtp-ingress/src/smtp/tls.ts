import { readFileSync } from "node:fs";
import { generate } from "selfsigned";
import { createFileOnce } from "@mam/runtime/files.ts";

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
  // Another process may make it first: theirs is used.
  return JSON.parse(createFileOnce(o.file, JSON.stringify({ key: pems.private, cert: pems.cert }), 0o600)) as TlsMaterial;
}
