import { createHash } from "node:crypto";

/**
 * A UUID (version 8, name-based) derived from its parts: the same delivery always gets the
 * same id, so a redelivered event cannot make a second copy.
 */
export function derivedId(...parts: string[]): string {
  const b = createHash("sha256").update(parts.join("\u0000")).digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
