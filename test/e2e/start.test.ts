import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { testEnv } from "@mam/testing/config.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { freePort, runService, type RunningProcess } from "@mam/testing/processes.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { chooseLogFormat, LineFormatter } from "../../scripts/log-format.ts";
import { Supervisor } from "../../scripts/supervisor.ts";

/** Six processes compiling TypeScript on a busy machine: starting may take a while. */
const STARTING = { timeoutMs: 150_000, intervalMs: 100 };

const SERVICES = ["gateway", "identity", "mailbox", "smtp-ingress", "billing", "realtime"] as const;
const WITH_SCHEMA = ["identity", "mailbox", "billing", "realtime"] as const;

type Line = { service: string; msg: string; child?: string; pid?: number; code?: number | null; signal?: string | null; attempt?: number; delayMs?: number };

/** The service processes a supervisor said it started, from its JSON or pretty lines. */
const startedPids = (output: string) => [...output.matchAll(/started \(pid (\d+)\)/g)].map((m) => Number(m[1]));

/** Is a process with this id still there? */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * `pnpm start` as an operator runs it: the six services under one supervisor that restarts
 * a killed one, shows the generated operator key in a box, and stops everything on SIGTERM
 * or Ctrl-C; JSON lines into a pipe, pretty lines on a terminal.
 */
describe("pnpm start", () => {
  const iso = isolate();
  const started: RunningProcess[] = [];
  /** What each run printed, for the service processes it started. */
  const outputs: (() => string)[] = [];
  let env: Record<string, string>;

  afterAll(async () => {
    for (const p of started) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    // A failed test leaves nothing running either.
    for (const pid of outputs.flatMap((o) => startedPids(o()))) if (alive(pid)) process.kill(pid, "SIGKILL");
    await iso.cleanup();
  });

  async function platformEnv(): Promise<Record<string, string>> {
    const e: Record<string, string> = {
      ...iso.env,
      PATH: testEnv.PATH,
      // Each service's own setting, through start.ts's <SERVICE>__<VAR>: health ports free on this machine, schemas of this file.
      PORT: String(await freePort()),
      SMTP_PORT: String(await freePort()),
      WS_PORT: String(await freePort()),
      SMTP_TLS_FILE: `/tmp/${iso.tag}-tls.json`,
      SCOPE_PRIVATE_KEY: Buffer.from(iso.scopeKeys.privateKeyPem).toString("base64"),
    };
    // The gateway's too: its /metrics port (8087 by default).
    for (const name of SERVICES) e[`${name.toUpperCase().replace("-", "_")}__HEALTH_PORT`] = String(await freePort());
    for (const name of WITH_SCHEMA) e[`${name.toUpperCase()}__DB_SCHEMA`] = iso.schema(name);
    return e;
  }

  const api = (key: string, method: string, path: string, body?: unknown) =>
    fetch(`http://127.0.0.1:${env.PORT}${path}`, {
      method,
      headers: { "x-api-key": key, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it("runs the platform: JSON lines into a pipe, the key in a box at once and again when ready, a killed service restarted, all stopped by SIGHUP", async () => {
    env = await platformEnv();
    const p = runService("scripts/start.ts", env);
    started.push(p);
    outputs.push(p.stdout);
    const lines = (): Line[] =>
      p
        .stdout()
        .split("\n")
        // The last piece may be a line still being written.
        .slice(0, -1)
        .map((l) => JSON.parse(l) as Line);
    const supervisor = () => lines().filter((l) => l.service === "supervisor");
    const pidOf = (name: string) => supervisor().findLast((l) => l.child === name && l.msg.endsWith(`started (pid ${l.pid})`))?.pid;
    try {
      await scenario();
    } finally {
      // Killed outright, its services stop by themselves (exit-with-parent.ts); afterAll sees to any left.
      if (p.child.exitCode === null) p.child.kill("SIGKILL");
    }

    async function scenario() {
      await waitFor(() => supervisor().some((l) => l.msg === "Platform ready"), { ...STARTING, what: "the platform ready" }).catch((err: Error) => {
        throw new Error(`${err.message}; stdout: ${p.stdout().slice(-3000)}; stderr: ${p.stderr().slice(-2000)}`);
      });
      expect(startedPids(p.stdout())).toHaveLength(SERVICES.length);

      // Every line of stdout is JSON and names its service; the key is in none of them.
      const all = lines();
      expect(all.filter((l) => !["supervisor", ...SERVICES].includes(l.service))).toEqual([]);
      // In a box as soon as identity printed it (before ready, in case we never get there), and again once ready.
      const boxed = () => [...p.stderr().matchAll(/│\s+(sa_[A-Za-z0-9_-]{43})\s+│/g)].map((m) => m[1]);
      await waitFor(() => boxed().length >= 2, { timeoutMs: 10_000, what: `the key shown twice (${p.stderr()})` });
      const key = boxed()[0]!;
      expect(boxed()).toEqual([key, key]);
      expect(p.stdout()).not.toContain(key);
      expect(p.stderr()).toContain("SUPER_ADMIN_KEY");
      expect((await api(key, "POST", "/v1/tenants", { name: "Before" })).status).toBe(201);

      // Identity dies without a word: restarted after the first pause, the platform ready again, the key still works.
      const killed = pidOf("identity")!;
      process.kill(killed, "SIGKILL");
      await waitFor(() => supervisor().some((l) => l.msg === "Platform ready again"), { ...STARTING, what: "ready again" });
      expect(supervisor().find((l) => l.child === "identity" && l.pid === killed && l.msg.includes("exited unexpectedly"))).toMatchObject({
        signal: "SIGKILL",
        code: null,
        attempt: 1,
        delayMs: 500,
        msg: "identity exited unexpectedly (SIGKILL); restart 1 in 0.5 s",
      });
      const restarted = pidOf("identity")!;
      expect(restarted).not.toBe(killed);
      expect(alive(killed)).toBe(false);
      const after = await api(key, "POST", "/v1/tenants", { name: "After" });
      expect(after.status).toBe(201);
      // Not shown again: the restarted identity found the key stored and printed nothing.
      expect(p.stderr().match(/sa_[A-Za-z0-9_-]{43}/g)).toHaveLength(2);

      // Its terminal closed (SIGHUP): the same graceful stop as SIGTERM or Ctrl-C.
      p.child.kill("SIGHUP");
      expect(await p.exited).toEqual({ code: 0, signal: null });
      for (const name of SERVICES) expect(supervisor().some((l) => l.child === name && l.msg === `${name} stopped (code 0)`)).toBe(true);
      expect(startedPids(p.stdout())).toHaveLength(SERVICES.length + 1);
      expect(startedPids(p.stdout()).filter(alive)).toEqual([]);
    }
  }, 300_000);

  it("on a terminal, pretty lines with each service's name, SUPER_ADMIN_KEY given to identity alone, and Ctrl-C stops everything", async () => {
    // A pseudo-terminal (util-linux script): stdout is a TTY, and ^C typed into it signals the whole foreground group.
    // Ports of its own: nothing of the first run may answer for this one.
    const chosenKey = `sa_${"chosen".repeat(5)}`;
    const ttyEnv: Record<string, string> = { ...(await platformEnv()), TERM: "xterm", LOG_LEVEL: "info", SUPER_ADMIN_KEY: chosenKey };
    const tty = spawn("script", ["-qfec", `exec ${process.execPath} --import tsx scripts/start.ts`, "/dev/null"], {
      env: ttyEnv,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    tty.stdout.on("data", (d: Buffer) => (out += d.toString()));
    tty.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => tty.once("exit", (code) => r(code)));
    const plain = () => out.replace(/\x1b\[[0-9;]*m/g, "").replace(/\r/g, "");
    outputs.push(plain);
    try {
      await waitFor(() => plain().includes("Platform ready:"), { ...STARTING, what: "the platform ready" }).catch((err: Error) => {
        throw new Error(`${err.message}; output: ${plain().slice(-3000)}`);
      });
      expect(startedPids(plain())).toHaveLength(SERVICES.length);
      const text = plain();
      // Coloured on a terminal, and no raw JSON line among them.
      expect(out).toContain("\x1b[");
      expect(text.split("\n").filter((l) => l.trim().startsWith("{"))).toEqual([]);
      expect(text).toMatch(/^supervisor +\| \[[\d:.]+\] INFO: identity started \(pid \d+\) \{"child":"identity","attempt":0\}$/m);
      for (const name of SERVICES) expect(text).toMatch(new RegExp(`^${name} +\\| \\[[\\d:.]+\\] INFO: `, "m"));
      // The key was generated by the first run; this one has none to show.
      expect(text).not.toMatch(/sa_[A-Za-z0-9_-]{43}/);
      // The operator key reaches identity, which uses it, and no other service.
      const holders = [...text.matchAll(/INFO: ([a-z-]+) started \(pid (\d+)\)/g)]
        .filter(([, , pid]) => readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(`SUPER_ADMIN_KEY=${chosenKey}`))
        .map(([, name]) => name);
      expect(holders).toEqual(["identity"]);
      const chosen = await fetch(`http://127.0.0.1:${ttyEnv.PORT}/v1/tenants`, {
        method: "POST",
        headers: { "x-api-key": chosenKey, "content-type": "application/json" },
        body: JSON.stringify({ name: "Chosen" }),
      });
      expect(chosen.status).toBe(201);
      tty.stdin.write("\x03");
      expect(await exited).toBe(0);
      expect(plain()).toContain("platform stopped");
      expect(startedPids(plain()).filter(alive)).toEqual([]);
    } finally {
      // The terminal gone, the supervisor gets SIGHUP, and its services follow it.
      if (tty.exitCode === null) tty.kill("SIGKILL");
    }
  }, 300_000);

  it("stops everything and exits 1 when a service fails 5 times without ever being ready, naming it and its error", async () => {
    const e = await platformEnv();
    // The gateway's port taken by something that is not the gateway (and never answers /readyz).
    const squatter = createServer((s) => s.destroy()).listen(Number(e.PORT), "0.0.0.0");
    await once(squatter, "listening");
    const p = runService("scripts/start.ts", e);
    started.push(p);
    outputs.push(p.stdout);
    try {
      const result = await Promise.race([p.exited, waitFor(() => false, { ...STARTING, what: "pnpm start to give up" })]);
      expect(result, `${p.stdout().slice(-3000)}\n${p.stderr().slice(-2000)}`).toEqual({ code: 1, signal: null });
    } finally {
      if (p.child.exitCode === null) p.child.kill("SIGKILL");
      squatter.close();
    }
    const lines = p
      .stdout()
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line & { level: number; lastError?: string });
    const supervisor = lines.filter((l) => l.service === "supervisor");
    const reason = `gateway: port ${e.PORT} is already in use; set PORT (gateway) or HEALTH_PORT to another`;
    expect(supervisor.filter((l) => l.level >= 50)).toEqual([
      expect.objectContaining({
        child: "gateway",
        attempt: 5,
        lastError: reason,
        msg: `gateway failed 5 times in a row without becoming ready; stopping everything. Its last error: ${reason}`,
      }),
    ]);
    expect(supervisor.filter((l) => l.child === "gateway" && l.msg.startsWith("gateway started"))).toHaveLength(5);
    expect(supervisor.some((l) => l.msg.startsWith("Platform ready"))).toBe(false);
    expect(supervisor.at(-1)?.msg).toBe("platform stopped");
    expect(startedPids(p.stdout()).filter(alive)).toEqual([]);
  }, 300_000);

  it("refuses a LOG_FORMAT it does not know, in one line", async () => {
    const p = runService("scripts/start.ts", { PATH: testEnv.PATH, LOG_FORMAT: "xml" });
    started.push(p);
    expect((await p.exited).code).toBe(2);
    expect(p.stderr()).toBe('LOG_FORMAT must be json or pretty, not "xml"\n');
    expect(p.stdout()).toBe("");
  });

  it("chooses the format: a flag over LOG_FORMAT over what stdout is", () => {
    expect(chooseLogFormat([], {}, true)).toBe("pretty");
    expect(chooseLogFormat([], {}, false)).toBe("json");
    expect(chooseLogFormat([], { LOG_FORMAT: "pretty" }, false)).toBe("pretty");
    expect(chooseLogFormat([], { LOG_FORMAT: "JSON" }, true)).toBe("json");
    expect(chooseLogFormat([], { LOG_FORMAT: "" }, true)).toBe("pretty");
    expect(chooseLogFormat(["--json"], { LOG_FORMAT: "pretty" }, true)).toBe("json");
    expect(chooseLogFormat(["--pretty"], { LOG_FORMAT: "json" }, false)).toBe("pretty");
    expect(chooseLogFormat(["--json", "--pretty"], {}, false)).toBe("pretty");
  });
});

/** The supervisor on its own, with small node programs for services. */
describe("Supervisor", () => {
  const node = (code: string) => ({ command: process.execPath, args: ["-e", code] });

  it("restarts a crashing child with doubling pauses up to the bound, passes its lines on, and stops the rest", async () => {
    const written: string[] = [];
    const logged: Line[] = [];
    const out = new LineFormatter("pretty", ["supervisor", "crasher", "steady"], { stdout: (t) => written.push(t), stderr: (t) => written.push(t) }, false);
    const logger = createLogger("supervisor", "info", { write: (l: string) => void logged.push(JSON.parse(l)) });
    const sup = new Supervisor(
      [
        {
          name: "crasher",
          ...node(`console.log(JSON.stringify({ level: 30, time: Date.now(), service: "crasher", msg: "up" })); console.error("going down"); process.exit(3);`),
          env: { PATH: testEnv.PATH },
          readyUrl: "http://127.0.0.1:1/readyz",
        },
        {
          name: "steady",
          ...node("console.log('plain text'); setInterval(() => {}, 1000); process.on('SIGTERM', () => process.exit(0));"),
          env: { PATH: testEnv.PATH },
          readyUrl: "http://127.0.0.1:1/readyz",
        },
      ],
      {
        logger,
        onLine: (name, stream, line) => out.line(name, stream, line),
        backoff: { initialMs: 20, maxMs: 80, resetAfterMs: 60_000 },
        graceMs: 5_000,
        // More crashes than this test counts: giving up is the next test's.
        giveUpAfter: 10,
      },
    );
    sup.start();
    await waitFor(() => logged.filter((l) => l.msg.includes("exited unexpectedly")).length >= 5, { timeoutMs: 20_000, what: "five crashes" });
    const steady = sup.pids().steady!;
    const crasher = sup.pids().crasher;
    await sup.stop();
    const crashes = logged.filter((l) => l.child === "crasher" && l.msg.includes("exited unexpectedly"));
    expect(crashes.slice(0, 5).map((l) => [l.code, l.attempt, l.delayMs])).toEqual([
      [3, 1, 20],
      [3, 2, 40],
      [3, 3, 80],
      [3, 4, 80],
      [3, 5, 80],
    ]);
    expect(alive(steady)).toBe(false);
    if (crasher) expect(alive(crasher)).toBe(false);
    expect(logged.find((l) => l.child === "steady" && l.msg.startsWith("steady stopped"))).toMatchObject({ code: 0, msg: "steady stopped (code 0)" });
    expect(logged.filter((l) => l.child === "steady" && l.msg.includes("exited unexpectedly"))).toEqual([]);
    const text = written.join("");
    expect(text).toMatch(/^crasher +\| \[[\d:.]+\] INFO: up$/m);
    expect(text).toMatch(/^crasher +\| going down$/m);
    expect(text).toMatch(/^steady +\| plain text$/m);
  });

  /** A child answering 200 on /readyz at `port` until SIGTERM. */
  const healthy = (port: number) => `require("node:http").createServer((q, r) => r.end("ok")).listen(${port}); process.on("SIGTERM", () => process.exit(0));`;

  it("gives up on a child failing 5 times in a row without ever becoming ready: one error line with its last error, every child stopped", async () => {
    const logged: (Line & { level: number; lastError?: string })[] = [];
    const logger = createLogger("supervisor", "info", { write: (l: string) => void logged.push(JSON.parse(l)) });
    const port = await freePort();
    let gaveUp: (name: string) => void;
    const given = new Promise<string>((r) => (gaveUp = r));
    const sup = new Supervisor(
      [
        // A bad setting: an uncaught error, its stack, then Node's version line.
        {
          name: "broken",
          ...node(`console.log("starting"); throw new Error("PORT must be a number");`),
          env: { PATH: testEnv.PATH },
          readyUrl: "http://127.0.0.1:1/readyz",
        },
        { name: "steady", ...node(healthy(port)), env: { PATH: testEnv.PATH }, readyUrl: `http://127.0.0.1:${port}/readyz` },
      ],
      { logger, onLine: () => {}, backoff: { initialMs: 10, maxMs: 20, resetAfterMs: 60_000 }, onGiveUp: (name) => gaveUp(name) },
    );
    sup.start();
    expect(await given).toBe("broken");
    const steady = logged.find((l) => l.child === "steady" && l.msg.startsWith("steady started"))!.pid!;
    await sup.stop();
    expect(sup.gaveUp).toBe("broken");
    expect(logged.filter((l) => l.level >= 50)).toEqual([
      expect.objectContaining({
        child: "broken",
        code: 1,
        attempt: 5,
        lastError: "Error: PORT must be a number",
        msg: "broken failed 5 times in a row without becoming ready; stopping everything. Its last error: Error: PORT must be a number",
      }),
    ]);
    expect(logged.filter((l) => l.child === "broken" && l.msg.startsWith("broken started"))).toHaveLength(5);
    expect(logged.filter((l) => l.child === "broken" && l.msg.includes("exited unexpectedly"))).toHaveLength(4);
    expect(logged.find((l) => l.child === "steady" && l.msg.startsWith("steady stopped"))).toMatchObject({ msg: "steady stopped (code 0)" });
    expect(alive(steady)).toBe(false);
    expect(sup.pids()).toEqual({ broken: undefined, steady: undefined });
  });

  it("never gives up on a child that was ready once: it is restarted however often it fails after", async () => {
    const logged: (Line & { level: number })[] = [];
    const logger = createLogger("supervisor", "info", { write: (l: string) => void logged.push(JSON.parse(l)) });
    const port = await freePort();
    const marker = join(mkdtempSync(join(tmpdir(), "sup-")), "ran");
    // Healthy on its first run; every later run fails at once, as a service whose server went away.
    const flaky = `const fs = require("node:fs"); if (fs.existsSync(${JSON.stringify(marker)})) { console.error("flaky: cannot start"); process.exit(1); } fs.writeFileSync(${JSON.stringify(marker)}, ""); ${healthy(port)}`;
    const sup = new Supervisor([{ name: "flaky", ...node(flaky), env: { PATH: testEnv.PATH }, readyUrl: `http://127.0.0.1:${port}/readyz` }], {
      logger,
      onLine: () => {},
      backoff: { initialMs: 10, maxMs: 20, resetAfterMs: 60_000 },
      giveUpAfter: 2,
      onGiveUp: () => logged.push({ level: 60, service: "test", msg: "gave up" }),
    });
    sup.start();
    try {
      await waitFor(() => logged.some((l) => l.msg === "flaky ready"), { timeoutMs: 20_000, what: "flaky ready" });
      process.kill(sup.pids().flaky!, "SIGKILL");
      await waitFor(() => logged.filter((l) => l.msg.includes("exited unexpectedly")).length >= 5, { timeoutMs: 20_000, what: "five failures" });
    } finally {
      await sup.stop();
    }
    expect(sup.gaveUp).toBeUndefined();
    expect(logged.filter((l) => l.level >= 50)).toEqual([]);
  });

  it("a child stops when its supervisor is killed outright (SIGKILL, no chance to stop it)", async () => {
    const child = "process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000); console.log('up');";
    const driver = `
      const { Supervisor } = await import("./scripts/supervisor.ts");
      const { createLogger } = await import("@mam/runtime/logger.ts");
      const args = ["--import", "tsx", "--import", "./scripts/exit-with-parent.ts", "-e", ${JSON.stringify(child)}];
      new Supervisor([{ name: "steady", command: process.execPath, args, env: { PATH: process.env.PATH }, readyUrl: "http://127.0.0.1:1/readyz" }], {
        logger: createLogger("supervisor"),
        onLine: (name, stream, line) => console.log(name + ": " + line),
      }).start();`;
    const p = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", driver], {
      env: { PATH: testEnv.PATH },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => out.includes("steady: up"), { timeoutMs: 20_000, what: `the child up (${out})` });
      const [pid] = startedPids(out);
      expect(alive(pid!)).toBe(true);
      p.kill("SIGKILL");
      await waitFor(() => !alive(pid!), { timeoutMs: 10_000, what: "the child gone with its supervisor" });
    } finally {
      for (const pid of startedPids(out)) if (alive(pid)) process.kill(pid, "SIGKILL");
      p.kill("SIGKILL");
    }
  });

  it("in JSON mode, passes pino lines unchanged and makes the others JSON lines naming their source", () => {
    const written: string[] = [];
    const out = new LineFormatter("json", ["svc"], { stdout: (t) => written.push(`out:${t}`), stderr: (t) => written.push(`err:${t}`) }, false);
    const pinoLine = JSON.stringify({ level: 40, time: "2026-01-01T00:00:00.000Z", service: "svc", msg: "careful" });
    out.line("svc", "stdout", pinoLine);
    out.line("svc", "stderr", "svc: failed to start");
    out.line("svc", "stdout", "");
    expect(written[0]).toBe(`out:${pinoLine}\n`);
    expect(written).toHaveLength(2);
    expect(written[1]!.startsWith("err:")).toBe(true);
    expect(JSON.parse(written[1]!.slice(4))).toMatchObject({ level: 50, service: "svc", msg: "svc: failed to start" });
  });
});
