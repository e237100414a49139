import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { testEnv } from "@mam/testing/config.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { freePort, runService, type RunningProcess } from "@mam/testing/processes.ts";
import { waitFor } from "@mam/runtime/wait.ts";

/** Six processes compiling TypeScript on a busy machine: starting may take a while. */
const STARTING = { timeoutMs: 150_000, intervalMs: 100 };
/** One step of the quickstart: a few requests, or a message through SMTP and the mailbox. */
const STEP_MS = 30_000;

const SERVICES = ["gateway", "identity", "mailbox", "smtp-ingress", "billing", "realtime"] as const;
const WITH_SCHEMA = ["identity", "mailbox", "billing", "realtime"] as const;
/** The ports the README shows (pnpm start's defaults), each replaced by this file's own. */
const DEFAULT_PORTS = { gateway: 8080, identity: 8081, mailbox: 8082, "smtp-ingress": 8083, billing: 8084, realtime: 8085 } as const;

/** Lines the background WebSocket watcher prints: they may come while a later step runs. */
const WATCHER = "ws:";
const DONE = "@@quickstart-step-done";

interface Step {
  code: string;
  /** The output shown under the block, as lines. */
  expected: string[];
}

/**
 * The Quickstart section of the README: the `console` block of `pnpm start` (shown, not run:
 * the test starts the platform itself) and each `sh` block, with the `text` block after it
 * as its output (none: it prints nothing).
 */
function quickstart(readme: string): { start: string[]; steps: Step[] } {
  const from = readme.indexOf("\n## Quickstart\n");
  if (from < 0) throw new Error("README.md has no ## Quickstart section");
  const end = readme.indexOf("\n## ", from + 1);
  const section = readme.slice(from, end < 0 ? undefined : end);
  const blocks = [...section.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, body: m[2]!.replace(/\n$/, "") }));
  const startBlock = blocks.find((b) => b.lang === "console" && b.body.includes("pnpm@12.4.2 start"));
  if (!startBlock) throw new Error("the Quickstart shows no `pnpm start` console block");
  const steps: Step[] = [];
  for (const b of blocks) {
    if (b.lang === "sh") steps.push({ code: b.body, expected: [] });
    else if (b.lang === "text") {
      const last = steps.at(-1);
      if (!last || last.expected.length) throw new Error(`a text block with no sh block before it:\n${b.body}`);
      last.expected = b.body.split("\n");
    }
  }
  // The command line itself is what the operator types; what follows is what start prints.
  return { start: startBlock.body.split("\n").slice(1), steps };
}

/** Spaces do not count (a box's padding around a shortened key); `<...>` is any text. */
const squash = (line: string) => line.replace(/\s+/g, " ").trim();
function linePattern(expected: string): RegExp {
  const parts = squash(expected).split("<...>");
  return new RegExp(`^${parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*?")}$`);
}

/**
 * Whether `actual` lines are what `expected` shows: line by line, `<...>` standing for
 * any text (an id, a time), and a line of `...` alone for any number of lines. Blank lines
 * do not count either (pnpm start spaces its box out).
 */
function matches(expected: string[], actual: string[]): boolean {
  const patterns = expected.filter((l) => l.trim()).map((l) => (squash(l) === "..." ? null : linePattern(l)));
  actual = actual.filter((l) => l.trim());
  const memo = new Map<string, boolean>();
  const at = (e: number, a: number): boolean => {
    const k = `${e},${a}`;
    const known = memo.get(k);
    if (known !== undefined) return known;
    let r: boolean;
    if (e === patterns.length) r = a === actual.length;
    else if (patterns[e] === null) r = at(e + 1, a) || (a < actual.length && at(e, a + 1));
    else r = a < actual.length && patterns[e]!.test(squash(actual[a]!)) && at(e + 1, a + 1);
    memo.set(k, r);
    return r;
  };
  return at(0, 0);
}

/**
 * The README's quickstart, run as a newcomer runs it: `pnpm start` in one terminal, the
 * `sh` blocks one after the other in one bash in another (so variables carry over), each
 * step's output checked against the one shown under it before the next runs.
 */
describe("the README's quickstart", () => {
  const iso = isolate();
  let platform: RunningProcess | undefined;
  let bash: ChildProcess | undefined;

  afterAll(async () => {
    // The shell's own group: the watcher it left in the background goes with it.
    if (bash?.pid && bash.exitCode === null) process.kill(-bash.pid, "SIGKILL");
    if (platform && platform.child.exitCode === null) {
      platform.child.kill("SIGTERM");
      await platform.exited;
    }
    await iso.cleanup();
  });

  it("parses the shown output the way the test reads it", () => {
    expect(matches(["{", '  "id": "<...>",', "...", "}"], ["{", '  "id": "01a2-x",', '  "a": 1,', '  "b": 2', "}"])).toBe(true);
    expect(matches(["{", "..."], ["{"])).toBe(true);
    expect(matches(['"status": "sent"'], ['"status": "bounced"'])).toBe(false);
    expect(matches(["a", "b"], ["a"])).toBe(false);
    expect(matches(["│ sa_<...> │"], ["│      sa_abc                    │"])).toBe(true);
  });

  it("runs as written: a tenant, two inboxes, local delivery, SMTP in, read back, watched live", async () => {
    const { start, steps } = quickstart(readFileSync("README.md", "utf8"));
    expect(steps.length).toBeGreaterThanOrEqual(6);

    const ports: Record<string, number> = {};
    for (const name of SERVICES) ports[name] = await freePort();
    const smtpPort = await freePort();
    const env: Record<string, string> = {
      ...iso.env,
      PATH: testEnv.PATH,
      // Pretty, as on the terminal the README shows (the box then goes to stdout).
      LOG_FORMAT: "pretty",
      LOG_LEVEL: "warn",
      PORT: String(ports.gateway),
      SMTP_PORT: String(smtpPort),
      WS_PORT: String(await freePort()),
      SMTP_TLS_FILE: `/tmp/${iso.tag}-tls.json`,
      SCOPE_PRIVATE_KEY: Buffer.from(iso.scopeKeys.privateKeyPem).toString("base64"),
      GATEWAY__HEALTH_PORT: String(await freePort()),
    };
    for (const name of SERVICES.slice(1)) env[`${name.toUpperCase().replace("-", "_")}__HEALTH_PORT`] = String(ports[name]);
    for (const name of WITH_SCHEMA) env[`${name.toUpperCase()}__DB_SCHEMA`] = iso.schema(name);
    // What the README shows on the default ports, on this test's.
    const ours = (line: string) => Object.entries(DEFAULT_PORTS).reduce((l, [name, port]) => l.replaceAll(`:${port}`, `:${ports[name]}`), line);

    platform = runService("scripts/start.ts", env);
    const p = platform;
    // The key's box comes as soon as identity makes it, and again after "Platform ready".
    await waitFor(() => /Platform ready[\s\S]*│\s+sa_[A-Za-z0-9_-]{43}\s+│[\s\S]*└/.test(p.stdout()), {
      ...STARTING,
      what: "the platform ready, with the key box",
    }).catch((err: Error) => {
      throw new Error(`${err.message}; stdout: ${p.stdout().slice(-3000)}; stderr: ${p.stderr().slice(-2000)}`);
    });
    const shown = p.stdout().replace(/\r/g, "").split("\n");
    const boxEnd = shown.findLastIndex((l) => l.includes("└"));
    expect(matches(start.map(ours), shown.slice(0, boxEnd + 1)), shown.join("\n")).toBe(true);
    const key = /│\s+(sa_[A-Za-z0-9_-]{43})\s+│/.exec(p.stdout())![1]!;

    // Terminal 2: `export SA=…` as the README says, then each block as written.
    const sh = spawn("bash", ["--noprofile", "--norc"], {
      cwd: process.cwd(),
      env: { PATH: testEnv.PATH, SA: key, API: `http://localhost:${ports.gateway}`, SMTP_PORT: String(smtpPort) },
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    bash = sh;
    let transcript = "";
    sh.stdout!.on("data", (d: Buffer) => (transcript += d.toString()));
    sh.stderr!.on("data", (d: Buffer) => (transcript += d.toString()));
    sh.stdin!.write("exec 2>&1\n");

    const lines = () => transcript.split("\n");
    const watcherLines = () => lines().filter((l) => l.startsWith(WATCHER));
    let expectedWatcher: string[] = [];
    let from = 0;
    for (const [i, step] of steps.entries()) {
      sh.stdin!.write(`${step.code}\necho ${DONE} ${i}\n`);
      await waitFor(() => lines().includes(`${DONE} ${i}`), { timeoutMs: STEP_MS, intervalMs: 50, what: `step ${i + 1} done` }).catch((err: Error) => {
        throw new Error(`${err.message}:\n${step.code}\n--- printed:\n${transcript.slice(-3000)}`);
      });
      // The watcher's lines come when the event does: this step is done once they are all there.
      expectedWatcher = [...expectedWatcher, ...step.expected.filter((l) => l.startsWith(WATCHER))];
      await waitFor(() => watcherLines().length >= expectedWatcher.length, {
        timeoutMs: STEP_MS,
        intervalMs: 50,
        what: `the watcher's lines of step ${i + 1}`,
      }).catch((err: Error) => {
        throw new Error(`${err.message}; expected ${JSON.stringify(expectedWatcher)}, printed:\n${transcript.slice(-3000)}`);
      });
      const all = lines();
      const done = all.indexOf(`${DONE} ${i}`);
      const printed = all.slice(from, done).filter((l) => !l.startsWith(WATCHER));
      from = done + 1;
      const expected = step.expected.filter((l) => !l.startsWith(WATCHER));
      expect(matches(expected, printed), `step ${i + 1}:\n${step.code}\n--- printed:\n${printed.join("\n")}`).toBe(true);
      expect(matches(expectedWatcher, watcherLines()), `the watcher after step ${i + 1}:\n${watcherLines().join("\n")}`).toBe(true);
    }
    // It stopped after its two messages, and nothing more came.
    sh.stdin!.end("wait\n");
    await new Promise((r) => sh.once("exit", r));
    expect(watcherLines().length).toBe(expectedWatcher.length);
  }, 240_000);
});
