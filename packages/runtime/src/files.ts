import { randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * A file created once, whole, by whichever process of a machine (or a shared volume) gets
 * there first: the content is written to a temporary file and linked into place, so a
 * reader never sees half of it and a second writer keeps the first one's. Returns what the
 * file holds then. Its directory is made (mode 0700) when missing.
 */
export function createFileOnce(file: string, content: string, mode: number): string {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  writeFileSync(tmp, content, { mode });
  try {
    linkSync(tmp, file);
  } catch (err) {
    // Another process made it first: theirs stands.
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  } finally {
    unlinkSync(tmp);
  }
  return readFileSync(file, "utf8");
}
