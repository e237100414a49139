/** "Acme Corp" → "acme-corp"; accents dropped, anything else becomes a single hyphen. */
export function slugify(name: string, fallback = "workspace", maxLength = 56): string {
  const s = name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, maxLength)
    .replace(/-+$/g, "");
  return s || fallback;
}
