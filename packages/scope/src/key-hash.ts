import { createHash, timingSafeEqual } from "node:crypto";

/** API keys are 256-bit random strings: a plain SHA-256 is enough to store and look them up. */
export const hashKey = (key: string) => createHash("sha256").update(key, "utf8").digest("hex");

/** Constant-time equality of two hex SHA-256 digests (always 32 bytes, so lengths never leak). */
export function sameDigest(aHex: string, bHex: string): boolean {
  const a = Buffer.from(aHex, "hex");
  const b = Buffer.from(bHex, "hex");
  return a.length === 32 && b.length === 32 && timingSafeEqual(a, b);
}

/** The shape any of our keys has; anything else is refused without a lookup. */
export const KEY_SHAPE = /^(sa|tk|wk|ak)_[A-Za-z0-9_-]{16,256}$/;
