import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { BaseEnv, ScopeSigningEnv } from "@mam/runtime/config.ts";
import { CliEnv } from "@mam/cli/config.ts";
import { Env as BillingEnv } from "@mam/billing/config.ts";
import { Env as GatewayEnv } from "@mam/gateway/config.ts";
import { Env as IdentityEnv } from "@mam/identity/config.ts";
import { Env as MailboxEnv } from "@mam/mailbox/config.ts";
import { Env as RealtimeEnv } from "@mam/realtime/config.ts";
import { Env as SmtpIngressEnv } from "@mam/smtp-ingress/config.ts";

const ROOT = process.cwd();

/** The variables a service's schema reads: its object's keys (through a transform, its input's). */
function namesOf(schema: z.ZodType): string[] {
  if (schema instanceof z.ZodObject) return Object.keys(schema.shape);
  if (schema instanceof z.ZodPipe) return namesOf(schema.in as z.ZodType);
  throw new Error(`cannot list the settings of a ${schema.constructor.name}`);
}

/** The TypeScript files under a folder, tests aside. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith(".ts") && !name.endsWith(".test.ts") ? [path] : [];
  });
}

/**
 * The variables a program reads without a schema (the CLI's options, `pnpm start`):
 * `process.env.NAME`, `env.NAME` of an environment it parsed, and commander's `.env("NAME")`.
 */
function readBy(files: string[]): string[] {
  const names = new Set<string>();
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/\b(?:process\.env|env)\.([A-Z][A-Z0-9_]*)\b|\.env\("([A-Z][A-Z0-9_]*)"\)/g)) names.add((m[1] ?? m[2])!);
  }
  return [...names];
}

const SERVICES: Record<string, z.ZodType> = {
  gateway: GatewayEnv,
  identity: IdentityEnv,
  mailbox: MailboxEnv,
  "smtp-ingress": SmtpIngressEnv,
  billing: BillingEnv,
  realtime: RealtimeEnv,
};

/** Every variable read by something an operator runs, with who reads it. */
function settings(): Map<string, string[]> {
  const readers = new Map<string, string[]>();
  const add = (who: string, names: string[]) => {
    for (const n of names) readers.set(n, [...(readers.get(n) ?? []), who]);
  };
  add("every service", namesOf(BaseEnv));
  add("gateway", namesOf(ScopeSigningEnv));
  for (const [name, schema] of Object.entries(SERVICES)) add(name, namesOf(schema));
  add("the CLI (pnpm mam)", [...namesOf(CliEnv), ...readBy(sources(join(ROOT, "packages/cli/src")))]);
  add("pnpm start", readBy(["scripts/start.ts", "scripts/log-format.ts", "scripts/supervisor.ts"].map((f) => join(ROOT, f))));
  return readers;
}

/** The names in the first column of the README's Configuration tables. */
function documented(readme: string): Set<string> {
  const from = readme.indexOf("\n## Configuration\n");
  if (from < 0) throw new Error("README.md has no ## Configuration section");
  const end = readme.indexOf("\n## ", from + 1);
  const names = new Set<string>();
  for (const line of readme.slice(from, end < 0 ? undefined : end).split("\n")) {
    const first = /^\|([^|]*)\|/.exec(line)?.[1];
    if (!first) continue;
    for (const m of first.matchAll(/`([A-Z][A-Z0-9_]*|<SERVICE>__<VAR>)`/g)) names.add(m[1]!);
  }
  return names;
}

/** GitHub's anchor of a heading: lower case, punctuation gone, spaces as dashes; repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of withoutCode(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = m[1]!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, "")
      .replace(/ /g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n ? `${base}-${n}` : base);
  }
  for (const m of markdown.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(m[1]!);
  return anchors;
}

/** The text without fenced blocks and inline code, where brackets are not links. */
const withoutCode = (markdown: string) => markdown.replace(/^```[\s\S]*?^```$/gm, "").replace(/`[^`\n]*`/g, "");

/** Every link target of a Markdown file: inline, reference definitions, autolinks. */
function linksOf(markdown: string): string[] {
  const text = withoutCode(markdown);
  return [
    ...[...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!),
    ...[...text.matchAll(/^\s*\[[^\]]+\]:\s*(\S+)/gm)].map((m) => m[1]!),
    ...[...text.matchAll(/<((?:https?|mailto|ftp):[^>\s]+)>/g)].map((m) => m[1]!),
  ];
}

/** Why a link does not lead to something in this repository, or null when it does. */
function brokenLink(file: string, target: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return "points outside the repository";
  const [path = "", anchor] = target.split("#");
  const to = path ? resolve(dirname(file), decodeURIComponent(path)) : file;
  if (relative(ROOT, to).startsWith("..")) return "points outside the repository";
  if (!existsSync(to)) return "no such file";
  if (anchor && to.endsWith(".md") && !anchorsOf(readFileSync(to, "utf8")).has(anchor)) return `no heading #${anchor} there`;
  return null;
}

describe("every setting is documented", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");

  it("every variable a service, the CLI or pnpm start reads is in the README's Configuration tables", () => {
    const inTables = documented(readme);
    const all = settings();
    // Sanity: the collection found what it must (a schema of each service, the CLI's and start's own).
    for (const name of [
      "SMTP_HOSTNAME",
      "SCOPE_TOKEN_TTL_S",
      "RPC_TIMEOUT_MS",
      "LARGE_BODIES_PER_KEY",
      "MCP_SESSION_IDLE_S",
      "MAM_URL",
      "MAM_KEY",
      "LOG_FORMAT",
      "BILLING_PLANS",
      "WS_PORT",
      "SUPER_ADMIN_KEY",
      "MAIL_DOMAIN",
    ])
      expect(all.has(name), name).toBe(true);
    const missing = [...all].filter(([name]) => !inTables.has(name)).map(([name, who]) => `${name} (${who.join(", ")})`);
    expect(missing).toEqual([]);
    // pnpm start's per-service settings (scripts/start.ts, envFor).
    expect(inTables.has("<SERVICE>__<VAR>")).toBe(true);
  });

  it("the tables name nothing that nothing reads", () => {
    const all = settings();
    const stale = [...documented(readme)].filter((name) => name !== "<SERVICE>__<VAR>" && !all.has(name));
    expect(stale).toEqual([]);
  });

  it("every link of README.md and docs/*.md leads to a file (and heading) inside the repository", () => {
    const files = [
      "README.md",
      ...readdirSync(join(ROOT, "docs"))
        .filter((f) => f.endsWith(".md"))
        .map((f) => `docs/${f}`),
    ];
    const broken = files.flatMap((f) => {
      const file = join(ROOT, f);
      return linksOf(readFileSync(file, "utf8")).flatMap((target) => {
        const why = brokenLink(file, target);
        return why ? [`${f}: ${target}: ${why}`] : [];
      });
    });
    expect(broken).toEqual([]);
    // The check can fail: a link outside, a missing file, a missing heading.
    expect(brokenLink(join(ROOT, "README.md"), "https://example.org")).toBe("points outside the repository");
    expect(brokenLink(join(ROOT, "README.md"), "docs/nothing-here.md")).toBe("no such file");
    expect(brokenLink(join(ROOT, "README.md"), "#no-such-heading")).toBe("no heading #no-such-heading there");
    expect(brokenLink(join(ROOT, "README.md"), "../outside.md")).toBe("points outside the repository");
  });
});
