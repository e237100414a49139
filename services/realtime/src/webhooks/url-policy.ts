import { isIP } from "node:net";
import { AppError } from "@mam/contracts/errors.ts";
import { isSpecialUse } from "@mam/runtime/special-use.ts";

/** The host of a URL as an address, when it is one (the URL parser already turned `0x7f.1` and `2130706433` into `127.0.0.1`). */
export function literalAddressOf(url: URL): string | null {
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return isIP(host) ? host : null;
}

/**
 * Refuses a webhook URL whose host is a literal private, loopback, link-local or other
 * special-use address (unless such are allowed). A host name is checked when it is
 * resolved, at every attempt: what it resolves to can change.
 */
export function checkWebhookUrl(raw: string, allowPrivate: boolean): void {
  if (allowPrivate) return;
  const address = literalAddressOf(new URL(raw));
  if (address && isSpecialUse(address)) {
    const message = `a webhook may not point at a private, loopback, link-local or other special-use address (${address})`;
    throw new AppError("VALIDATION_ERROR", `Invalid body: url: ${message}`, [{ path: "url", message }]);
  }
}
