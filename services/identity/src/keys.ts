import { randomBytes } from "node:crypto";
import { keyPrefixOf, SHOWN_PREFIX_LENGTH, type KeyKind } from "@mam/contracts/keys.ts";

/** 32 random bytes (256 bits) after the kind's prefix. */
export function generateKey(kind: KeyKind): string {
  return `${keyPrefixOf[kind]}${randomBytes(32).toString("base64url")}`;
}

export const shownPrefix = (key: string) => key.slice(0, SHOWN_PREFIX_LENGTH);

/** "Acme Corp" → "acme-corp"; accents dropped, anything else becomes a single hyphen. */
export function slugify(name: string): string {
  const s = name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 56)
    .replace(/-+$/g, "");
  return s || "workspace";
}
