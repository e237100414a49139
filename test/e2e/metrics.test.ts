import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { TestDnsServer } from "@mam/testing/dns-server.ts";
import { SmtpTranscript } from "@mam/testing/smtp-transcript.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/** One sample of the text exposition format. */
interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text exposition format (0.0.4): `# HELP`/`# TYPE` lines, then `name{label="value",...} number`. */
function parseExposition(text: string): { series: Series[]; types: Map<string, string> } {
  const series: Series[] = [];
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    // Go's float syntax, as Prometheus reads it: +Inf, -Inf, NaN in any case.
    const raw = m[3]!.toLowerCase();
    const value = raw === "+inf" ? Infinity : raw === "-inf" ? -Infinity : Number(raw === "nan" ? Number.NaN : raw);
    if (Number.isNaN(value) && raw !== "nan") throw new Error(`not a number: ${line}`);
    series.push({ name: m[1]!, labels, value });
  }
  return { series, types };
}

class Scrape {
  constructor(
    readonly text: string,
    readonly series: Series[],
    readonly types: Map<string, string>,
  ) {}

  all(name: string, labels: Record<string, string> = {}): Series[] {
    return this.series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  }

  /**
   * What the counters and histograms gained since `base` (gauges as they are now): the
   * services' metrics live as long as their process, and a test run may have started others
   * of the same name in this process before this file.
   */
  since(base: Scrape): Scrape {
    const family = (name: string) => {
      const h = /^(.*)_(bucket|count|sum)$/.exec(name);
      return h && this.types.get(h[1]!) === "histogram" ? h[1]! : name;
    };
    const cumulative = (name: string) => ["counter", "histogram"].includes(this.types.get(family(name)) ?? "");
    const key = (x: Series) => `${x.name}${JSON.stringify(Object.entries(x.labels).sort())}`;
    const before = new Map(base.series.map((x) => [key(x), x.value]));
    const series = this.series.map((x) => (cumulative(x.name) ? { ...x, value: x.value - (before.get(key(x)) ?? 0) } : x));
    return new Scrape(this.text, series, this.types);
  }

  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const found = this.all(name, labels);
    if (found.length > 1) throw new Error(`${found.length} series of ${name} match ${JSON.stringify(labels)}`);
    return found[0]?.value;
  }

  /** Every histogram's buckets rise with `le`, and the +Inf bucket is its count. */
  checkHistograms(): number {
    let checked = 0;
    for (const [name, type] of this.types) {
      if (type !== "histogram") continue;
      const groups = new Map<string, Series[]>();
      for (const b of this.all(`${name}_bucket`)) {
        const { le: _le, ...rest } = b.labels;
        const key = JSON.stringify(rest);
        groups.set(key, [...(groups.get(key) ?? []), b]);
      }
      for (const [key, buckets] of groups) {
        const sorted = buckets.map((b) => ({ le: Number(b.labels.le === "+Inf" ? Infinity : b.labels.le), n: b.value })).sort((x, y) => x.le - y.le);
        for (let i = 1; i < sorted.length; i++) expect(sorted[i]!.n, `${name} ${key}`).toBeGreaterThanOrEqual(sorted[i - 1]!.n);
        expect(sorted.at(-1)!.le).toBe(Infinity);
        expect(sorted.at(-1)!.n, `${name} ${key} +Inf = count`).toBe(this.value(`${name}_count`, JSON.parse(key)));
        checked++;
      }
    }
    return checked;
  }
}

async function scrape(port: number): Promise<Scrape> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/plain");
  const text = await res.text();
  const { series, types } = parseExposition(text);
  return new Scrape(text, series, types);
}

describe("Prometheus metrics on every service's health port", () => {
  const dns = new TestDnsServer();
  let s: Stack;
  let a: { id: string; apiKey: string; email: string };
  let b: { id: string; apiKey: string; email: string };
  let tenantKey: string;
  type Service = "gateway" | "identity" | "mailbox" | "smtp-ingress" | "billing" | "realtime";
  const ports = {} as Record<Service, number>;
  /** Each service's metrics before this file's activity. */
  const baseline = {} as Record<Service, Scrape>;
  /** What a service counted since the baseline. */
  const counted = async (service: Service) => (await scrape(ports[service])).since(baseline[service]);

  beforeAll(async () => {
    s = new Stack({ smtp: true, realtime: 1, billing: true, mailboxEnv: { DNS_SERVERS: await dns.start() } });
    await s.start();
    const port = (p: number | undefined) => {
      if (!p) throw new Error("no health port");
      return p;
    };
    ports.gateway = port(s.gateways[0]!.backbone.healthPort);
    ports.identity = port(s.identity.backbone.healthPort);
    ports.mailbox = port(s.mailbox!.backbone.healthPort);
    ports["smtp-ingress"] = port(s.smtp!.backbone.healthPort);
    ports.billing = port(s.billing!.backbone.healthPort);
    ports.realtime = port(s.realtimes[0]!.backbone.healthPort);
    for (const service of Object.keys(ports) as Service[]) baseline[service] = await scrape(ports[service]);

    const t = await provisionTenant(s, "Metrics");
    tenantKey = t.key.key;
    a = (await s.api("POST", "/v1/inboxes", { key: tenantKey, body: { username: "metrics-a" } })).body;
    b = (await s.api("POST", "/v1/inboxes", { key: tenantKey, body: { username: "metrics-b" } })).body;

    // Mail from outside, over SMTP, once the directory knows the inbox.
    const smtpPort = s.smtp!.port;
    await waitFor(
      async () => {
        const c = await SmtpTranscript.open(smtpPort);
        await c.reply();
        await c.command("EHLO probe.example");
        await c.command("MAIL FROM:<sender@example.com>");
        const rcpt = await c.command(`RCPT TO:<${a.email}>`);
        if (!rcpt.startsWith("250")) {
          c.close();
          return false;
        }
        await c.command("DATA");
        const queued = await c.command("From: sender@example.com\r\nTo: a\r\nSubject: Metered\r\n\r\nHello\r\n.");
        await c.command("QUIT");
        c.close();
        return queued.startsWith("250");
      },
      { timeoutMs: 10_000, what: "mail accepted over SMTP" },
    );
    // And a send from a to b: delivered locally.
    const sent = await s.api("POST", `/v1/inboxes/${a.id}/send`, { key: a.apiKey, body: { to: [b.email], subject: "Local", plainBody: "x", verified: true } });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    const listed = async (inbox: { id: string; apiKey: string }, direction: string) =>
      (await s.api("GET", `/v1/inboxes/${inbox.id}/messages?direction=${direction}`, { key: inbox.apiKey })).body.messages?.length ?? 0;
    await waitFor(async () => (await listed(a, "inbound")) === 1 && (await listed(b, "inbound")) === 1, { timeoutMs: 10_000, what: "both filed" });
  });
  afterAll(async () => {
    await s?.stop();
    await dns.stop();
  });

  it("the gateway counts requests by route pattern and status, and times them", async () => {
    const m = await counted("gateway");
    expect(m.value("mam_http_requests_total", { method: "POST", route: "/v1/inboxes", status: "201" })).toBe(2);
    expect(m.value("mam_http_requests_total", { method: "POST", route: "/v1/tenants", status: "201" })).toBe(1);
    expect(m.value("mam_http_requests_total", { method: "POST", route: "/v1/inboxes/:inboxId/send", status: "200" })).toBe(1);
    expect(m.value("mam_http_requests_total", { method: "GET", route: "/v1/inboxes/:inboxId/messages", status: "200" })).toBeGreaterThanOrEqual(2);
    expect(m.value("mam_http_request_duration_seconds_count", { method: "POST", route: "/v1/inboxes" })).toBe(2);

    // A 404 and a refused key are counted without their path.
    expect((await s.api("GET", `/v1/nowhere/${a.id}`, { key: tenantKey })).status).toBe(404);
    expect((await s.api("GET", `/v1/inboxes/${a.id}`, { key: "am_not-a-key" })).status).toBe(401);
    const after = await counted("gateway");
    expect(after.value("mam_http_requests_total", { method: "GET", route: "unmatched", status: "404" })).toBe(1);
    expect(after.value("mam_http_requests_total", { method: "GET", route: "unmatched", status: "401" })).toBe(1);
    expect(after.checkHistograms()).toBeGreaterThan(3);

    // The gateway's RPCs, by contract subject.
    expect(after.value("mam_rpc_client_duration_seconds_count", { subject: "svc.mailbox.inbox.create", outcome: "ok" })).toBe(2);
  });

  it("/metrics is on the health port only: the public API port does not serve it", async () => {
    const r = await s.api("GET", "/metrics");
    expect(r.status).toBe(404);
    expect(r.body.code).toBe("NOT_FOUND");
  });

  it("services time the requests they answer by subject", async () => {
    const mailbox = await counted("mailbox");
    expect(mailbox.value("mam_rpc_server_duration_seconds_count", { subject: "svc.mailbox.inbox.create", outcome: "ok" })).toBe(2);
    const identity = await counted("identity");
    expect(identity.value("mam_rpc_server_duration_seconds_count", { subject: "svc.identity.tenant.create", outcome: "ok" })).toBe(1);
    expect(mailbox.checkHistograms()).toBeGreaterThan(0);
  });

  it("services with a database time every statement they send it; those without have no such series", async () => {
    for (const service of ["identity", "mailbox", "billing", "realtime"] as const) {
      const m = await counted(service);
      expect(m.value("mam_db_query_duration_seconds_count", { outcome: "ok" }), service).toBeGreaterThan(0);
    }
    // The inboxes created, the mail filed and sent and delivered: many statements, each counted.
    expect((await counted("mailbox")).value("mam_db_query_duration_seconds_count", { outcome: "ok" })).toBeGreaterThanOrEqual(20);
    for (const service of ["gateway", "smtp-ingress"] as const)
      expect((await counted(service)).all("mam_db_query_duration_seconds_count"), service).toEqual([]);
  });

  it("smtp-ingress counts sessions, replies by code, and the ingest backlog", async () => {
    const m = await counted("smtp-ingress");
    expect(m.value("mam_smtp_replies_total", { code: "250" })).toBeGreaterThanOrEqual(4);
    expect(m.value("mam_smtp_replies_total", { code: "220" })).toBe(m.value("mam_smtp_sessions_opened_total"));
    expect(m.value("mam_smtp_replies_total", { code: "354" })).toBe(1);
    expect(m.value("mam_smtp_sessions_opened_total")).toBeGreaterThanOrEqual(1);
    expect(m.value("mam_smtp_sessions_current")).toBeGreaterThanOrEqual(0);
    expect(m.value("mam_ingest_backlog_messages")).toBeGreaterThanOrEqual(0);
    // Filed (the inbox lists it), then acknowledged: nothing left in the work queue.
    await waitFor(async () => (await scrape(ports["smtp-ingress"])).value("mam_ingest_backlog_messages") === 0, {
      timeoutMs: 10_000,
      intervalMs: 500,
      what: "ingest backlog 0",
    });
  });

  it("every durable consumer's lag is a gauge of its service, caught up at 0", async () => {
    const expected: Record<string, string[]> = {
      identity: ["identity-read-model", "identity-counts-inbox-created", "identity-counts-domain-added"],
      mailbox: [
        "mailbox-read-model",
        "mailbox-plan-limits",
        "mailbox-default-limits",
        "mailbox-tenant-pauses",
        "mailbox-delivery",
        "mailbox-ingest",
        "mailbox-workspace-ends",
      ],
      realtime: [
        "realtime-read-model",
        "realtime-feed",
        "realtime-webhooks",
        "realtime-workspace-ends",
        "realtime-ws-workspace-created",
        "realtime-ws-inbox-deleted",
      ],
      billing: ["billing-read-model", "billing-metrics", "billing-metrics-workspaces"],
    };
    for (const [service, consumers] of Object.entries(expected)) {
      await waitFor(
        async () => {
          const m = await scrape(ports[service as keyof typeof ports]);
          return consumers.every((consumer) => m.value("mam_consumer_lag_messages", { consumer }) === 0);
        },
        { timeoutMs: 10_000, intervalMs: 500, what: `${service}'s consumers caught up` },
      );
    }
  });

  it("the mailbox counts delivery outcomes and the retry queue's depth", async () => {
    const m = await counted("mailbox");
    expect(m.value("mam_delivery_outcomes_total", { outcome: "delivered" })).toBe(1);
    expect(m.value("mam_delivery_outcomes_total", { outcome: "deferred" })).toBe(0);
    expect(m.value("mam_delivery_outcomes_total", { outcome: "bounced" })).toBe(0);
    for (const state of ["due", "scheduled", "leased"]) expect(m.value("mam_delivery_queue_depth", { state })).toBe(0);
  });

  it("every service shows the process metrics, and no label names an id, an address or a key", async () => {
    const secrets = [a.id, b.id, a.email, b.email, a.apiKey, b.apiKey, tenantKey, s.operatorKey, s.iso.prefix];
    for (const [service, port] of Object.entries(ports)) {
      const m = await scrape(port);
      expect(m.value("process_cpu_user_seconds_total"), service).toBeGreaterThan(0);
      expect(m.all("nodejs_eventloop_lag_seconds").length, service).toBe(1);
      for (const x of m.series) for (const v of Object.values(x.labels)) for (const secret of secrets) expect(v, `${service} ${x.name}`).not.toContain(secret);
      expect(m.text).not.toMatch(/@agents\.test/);
    }
  });

  it("the Grafana dashboard asks only for series the services expose, and Prometheus scrapes each service's health port", async () => {
    const exposed = new Set<string>();
    for (const port of Object.values(ports)) for (const x of (await scrape(port)).series) exposed.add(x.name);
    const dashboard = JSON.parse(readFileSync("infra/grafana/platform-dashboard.json", "utf8")) as { panels: { targets?: { expr: string }[] }[] };
    const asked = new Set(dashboard.panels.flatMap((p) => p.targets ?? []).flatMap((t) => t.expr.match(/\b(?:mam|process|nodejs)_[a-z0-9_]+/g) ?? []));
    expect(asked.size).toBeGreaterThan(10);
    for (const name of asked) expect(exposed.has(name), name).toBe(true);

    const prometheus = readFileSync("infra/prometheus/prometheus.yml", "utf8");
    const jobs = new Map([...prometheus.matchAll(/job_name: (\S+)[\s\S]*?port: (\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
    expect([...jobs.keys()].sort()).toEqual(Object.keys(ports).sort());
    // The ports docker-compose.yml gives each service (the gateway's HEALTH_PORT: see docs/metrics.md).
    const compose = readFileSync("docker-compose.yml", "utf8");
    for (const [job, port] of jobs) {
      const block = /\n {2}([a-z-]+):\n([\s\S]*?)(?=\n {2}[a-z-]+:\n|\nvolumes:)/g;
      const own = [...compose.matchAll(block)].find((m) => m[1] === job)?.[2] ?? "";
      const health = /HEALTH_PORT: "(\d+)"/.exec(own)?.[1];
      if (job === "gateway" && !health) continue;
      expect(Number(health), job).toBe(port);
    }
  });
});
