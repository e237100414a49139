import { randomBytes } from "node:crypto";
import { keyPrefixOf, SHOWN_PREFIX_LENGTH, type KeyKind } from "@mam/contracts/keys.ts";

/** 32 random bytes (256 bits) after the kind's prefix. */
export function generateKey(kind: KeyKind): string {
  return `${keyPrefixOf[kind]}${randomBytes(32).toString("base64url")}`;
}

export const shownPrefix = (key: string) => key.slice(0, SHOWN_PREFIX_LENGTH);

export { slugify } from "@mam/contracts/slug.ts";
