import type { Command } from "commander";

/** The options every command shares (set on the program, before or after the command's name). */
export interface Globals {
  /** The public API's base URL (MAM_URL). */
  url: string;
  /** The API key the command acts with (MAM_KEY). */
  key?: string;
  json: boolean;
}

export function globalsOf(cmd: Command): Globals {
  const o = cmd.optsWithGlobals<{ url: string; key?: string; json?: boolean }>();
  return { url: o.url.replace(/\/+$/, ""), key: o.key || undefined, json: !!o.json };
}

/** A failure to report as `error: <message> (<code>)` with exit code 1. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export function requireKey(g: Globals): string {
  if (!g.key) throw new CliError("no API key: pass --key or set MAM_KEY", "UNAUTHORIZED");
  return g.key;
}
