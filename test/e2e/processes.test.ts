import { createServer } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { isolate } from "@mam/testing/isolation.ts";
import { freePort, runService, type RunningProcess } from "@mam/testing/processes.ts";
import { waitFor } from "@mam/runtime/wait.ts";

const SERVICES = ["identity", "gateway", "mailbox", "smtp-ingress", "billing", "realtime"] as const;
const entry = (name: string) => `services/${name}/src/main.ts`;

/** The services as processes: started, healthy, stopped by SIGTERM; or one clear line when a server is missing. */
describe("service processes", () => {
  const iso = isolate();
  const running: RunningProcess[] = [];
  afterAll(async () => {
    for (const p of running) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    await iso.cleanup();
  });

  function env(name: string, extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...iso.env,
      DB_SCHEMA: iso.schema(name),
      SCOPE_PRIVATE_KEY: name === "gateway" ? Buffer.from(iso.scopeKeys.privateKeyPem).toString("base64") : "",
      ...extra,
    };
  }

  it("all six start, report health and readiness, answer, and stop cleanly on SIGTERM", async () => {
    const ports = new Map<(typeof SERVICES)[number], number>();
    for (const name of SERVICES) {
      const port = await freePort();
      ports.set(name, port);
      const extra: Record<string, string> = name === "gateway" ? { PORT: String(port) } : { HEALTH_PORT: String(port) };
      if (name === "smtp-ingress") Object.assign(extra, { SMTP_PORT: String(await freePort()), SMTP_TLS_FILE: `/tmp/${iso.tag}-tls.json` });
      running.push(runService(entry(name), env(name, { ...extra, LOG_LEVEL: "info" })));
    }
    const procs = new Map(SERVICES.map((n, i) => [n, running[i]!]));
    for (const [name, port] of ports) {
      await waitFor(
        async () =>
          (await fetch(`http://127.0.0.1:${port}/readyz`).then(
            (r) => r.status,
            () => 0,
          )) === 200,
        { timeoutMs: 30_000, intervalMs: 100, what: `${name} ready (stderr: ${procs.get(name)!.stderr()})` },
      );
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    }

    // The operator key was generated and printed once by identity; the stack answers with it.
    const sa = /sa_[A-Za-z0-9_-]{43}/.exec(procs.get("identity")!.stdout())?.[0];
    expect(sa).toBeDefined();
    const res = await fetch(`http://127.0.0.1:${ports.get("gateway")}/v1/tenants`, {
      method: "POST",
      headers: { "x-api-key": sa!, "content-type": "application/json" },
      body: JSON.stringify({ name: "Process Test" }),
    });
    expect(res.status).toBe(201);
    // This machine's NATS takes anyone: each service works, and says so once.
    for (const [name, p] of procs) {
      const warnings = p
        .stdout()
        .split("\n")
        .filter((l) => l.includes("NATS accepts unauthenticated connections"));
      expect({ name, warnings: warnings.length }).toEqual({ name, warnings: 1 });
    }

    for (const p of running) p.child.kill("SIGTERM");
    const exits = await Promise.all(running.map((p) => p.exited));
    const tails = SERVICES.map((n, i) =>
      exits[i]!.code === 0 ? "" : `${n}: ${procs.get(n)!.stdout().slice(-1500)} ${procs.get(n)!.stderr().slice(-500)}`,
    ).join("\n");
    expect(exits, tails).toEqual(SERVICES.map(() => ({ code: 0, signal: null })));
    for (const name of SERVICES) {
      const lines = procs
        .get(name)!
        .stdout()
        .split("\n")
        .filter((l) => l.startsWith("{"));
      expect(lines.map((l) => JSON.parse(l).msg)).toContain("stopped");
    }
  });

  it.each([
    ["identity", { NATS_URL: "nats://127.0.0.1:1" }, /^identity: cannot reach NATS at nats:\/\/127\.0\.0\.1:1.*nats-server -js/],
    [
      "identity",
      { DATABASE_URL: "postgres://postgres:secret@127.0.0.1:1/postgres" },
      /^identity: cannot reach PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/postgres.*pg_ctlcluster/,
    ],
    ["gateway", { REDIS_URL: "redis://127.0.0.1:1" }, /^gateway: cannot reach Redis at redis:\/\/127\.0\.0\.1:1.*redis-server/],
  ])("%s with %o unreachable says so in one line and exits 1", async (name, extra, line) => {
    const p = runService(entry(name), env(name, extra as Record<string, string>));
    running.push(p);
    const exit = await p.exited;
    expect(exit.code).toBe(1);
    const errLines = p.stderr().trim().split("\n");
    expect(errLines).toHaveLength(1);
    expect(errLines[0]).toMatch(line);
    expect(p.stderr()).not.toContain("secret");
  });

  it("a port already taken is one clear line too", async () => {
    const port = await freePort();
    const blocker = createServer().listen(port, "127.0.0.1");
    try {
      const p = runService(entry("mailbox"), env("mailbox", { HEALTH_PORT: String(port) }));
      running.push(p);
      expect((await p.exited).code).toBe(1);
      expect(p.stderr().trim()).toBe(`mailbox: port ${port} is already in use; set PORT (gateway) or HEALTH_PORT to another`);
    } finally {
      blocker.close();
    }
  });
});
