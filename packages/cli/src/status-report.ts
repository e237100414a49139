import type { Bus } from "@mam/bus/connection.ts";
import { feedStreamName } from "@mam/contracts/realtime-feed.ts";
import { ingestStreamName } from "@mam/contracts/ingest.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { eventsStreamName, rpcSubject } from "@mam/contracts/subjects.ts";
import { loadCliConfig } from "./config.ts";
import { CliError, type Globals } from "./context.ts";
import { operatorRequest, withBus } from "./nats.ts";
import { operatorSubject, READ_MODELS, rebuildSubject, type RebuildProgress } from "./operator.ts";
import { table } from "./output.ts";

/**
 * A request each service answers without a scope token (a public one, or an operator one
 * refused before any lookup), so asking does not log a refused token: any answer means a
 * replica is up and subscribed.
 */
const PINGS: Record<string, string> = {
  identity: RpcContracts.identity.keyResolve.subject,
  mailbox: operatorSubject("mailbox", "delivery", "queue"),
  billing: RpcContracts.billing.stripeWebhook.subject,
  realtime: RpcContracts.realtime.wsRoute.subject,
};

interface ServiceState {
  service: string;
  via: string;
  up: boolean;
  detail: string;
}

interface ConsumerState {
  stream: string;
  consumer: string;
  /** Matching messages not delivered yet: the lag. */
  pending: number;
  ackPending: number;
  redelivered: number;
  /** The stream sequence up to which everything is acknowledged. */
  ackFloor: number;
  pulls: number;
}

interface StreamState {
  stream: string;
  messages: number;
  bytes: number;
  firstSeq: number;
  lastSeq: number;
  consumers: number;
}

type ConsumerInfo = Awaited<ReturnType<Bus["jsm"]["consumers"]["info"]>>;

/** The NATS client's error classes by name (this package does not depend on the client itself). */
const named = (err: unknown, name: string): boolean => (err as Error)?.name === name || ((err as Error)?.cause as Error | undefined)?.name === name;

async function ping(bus: Bus, service: string, subject: string): Promise<ServiceState> {
  const started = performance.now();
  try {
    await bus.nc.request(rpcSubject(bus.prefix, subject), new TextEncoder().encode("{}"), { timeout: 2_000 });
    return { service, via: "nats", up: true, detail: `answered in ${Math.round(performance.now() - started)} ms` };
  } catch (err) {
    if (named(err, "NoResponders")) return { service, via: "nats", up: false, detail: "no replica subscribed" };
    if (named(err, "TimeoutError")) return { service, via: "nats", up: false, detail: "no answer within 2 s" };
    return { service, via: "nats", up: false, detail: (err as Error).message };
  }
}

/** A health endpoint's /readyz: 200 ready, 503 with the failing checks named. */
async function readyz(service: string, base: string): Promise<ServiceState> {
  const url = `${base.replace(/\/+$/, "")}/readyz`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
    const body = (await res.json().catch(() => ({}))) as { checks?: Record<string, boolean> };
    const failing = Object.entries(body.checks ?? {})
      .filter(([, ok]) => !ok)
      .map(([name]) => name);
    return {
      service,
      via: url,
      up: res.status === 200,
      detail: res.status === 200 ? "ready" : `not ready${failing.length ? `: ${failing.join(", ")}` : ` (${res.status})`}`,
    };
  } catch (err) {
    return { service, via: url, up: false, detail: `unreachable (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message})` };
  }
}

/** `name=url` pairs of MAM_HEALTH (comma separated) and --health. */
export function healthEndpoints(fromEnv: string, given: string[]): [string, string][] {
  const all = [...fromEnv.split(","), ...given].map((s) => s.trim()).filter(Boolean);
  return all.map((pair) => {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new CliError(`--health takes name=url (got "${pair}")`, "VALIDATION_ERROR");
    return [pair.slice(0, eq), pair.slice(eq + 1)];
  });
}

async function streamsAndConsumers(bus: Bus): Promise<{ streams: StreamState[]; consumers: ConsumerState[] }> {
  const streams: StreamState[] = [];
  const consumers: ConsumerState[] = [];
  for (const name of [eventsStreamName(bus.prefix), ingestStreamName(bus.prefix), feedStreamName(bus.prefix)]) {
    const info = await bus.jsm.streams.info(name).catch(() => undefined);
    if (!info) continue;
    streams.push({
      stream: name,
      messages: info.state.messages,
      bytes: info.state.bytes,
      firstSeq: info.state.first_seq,
      lastSeq: info.state.last_seq,
      consumers: info.state.consumer_count,
    });
    const found: ConsumerInfo[] = [];
    for await (const c of bus.jsm.consumers.list(name)) found.push(c);
    // Durable consumers are the services'; the unnamed ones are short-lived readers (ordered consumers).
    for (const c of found.filter((c) => c.config.durable_name).sort((a, b) => a.name.localeCompare(b.name))) {
      consumers.push({
        stream: name,
        consumer: c.name,
        pending: c.num_pending,
        ackPending: c.num_ack_pending,
        redelivered: c.num_redelivered,
        ackFloor: c.ack_floor.stream_seq,
        pulls: c.num_waiting,
      });
    }
  }
  return { streams, consumers };
}

/** What only the services know (operator requests, with the key): the delivery queue and read-model rebuilds. */
async function askServices(g: Globals, bus: Bus) {
  const errorOf = (err: unknown) => ({ error: err instanceof CliError ? `${err.message} (${err.code})` : (err as Error).message });
  const deliveryQueue = await operatorRequest(g, bus, operatorSubject("mailbox", "delivery", "queue"), {}, 5_000).catch(errorOf);
  const readModels: Record<string, RebuildProgress | { error: string }> = {};
  for (const [name, m] of Object.entries(READ_MODELS)) {
    readModels[name] = await operatorRequest<RebuildProgress>(g, bus, rebuildSubject(m.service, m.projection), { action: "progress" }, 5_000).catch(errorOf);
  }
  return { deliveryQueue, readModels };
}

export type StatusReport = Awaited<ReturnType<typeof statusReport>>;

/** Everything `mam status` shows, gathered. */
export async function statusReport(g: Globals, health: string[]) {
  const endpoints = healthEndpoints(loadCliConfig().MAM_HEALTH, health);
  return withBus(async (bus) => {
    const services = [
      await readyz("gateway", g.url),
      ...(await Promise.all(Object.entries(PINGS).map(([service, subject]) => ping(bus, service, subject)))),
      ...(await Promise.all(endpoints.map(([name, url]) => readyz(name, url)))),
    ];
    const { streams, consumers } = await streamsAndConsumers(bus);
    const fromServices = g.key ? await askServices(g, bus) : undefined;
    return { services, streams, consumers, ...fromServices };
  });
}

export function render(r: {
  services: ServiceState[];
  streams: StreamState[];
  consumers: ConsumerState[];
  deliveryQueue?: Record<string, unknown>;
  readModels?: Record<string, RebuildProgress | { error: string }>;
}): string {
  const out = [
    "SERVICES",
    table(r.services, [
      ["SERVICE", (s) => s.service],
      ["STATE", (s) => (s.up ? "up" : "DOWN")],
      ["DETAIL", (s) => s.detail],
      ["ASKED", (s) => s.via],
    ]),
    "",
    "STREAMS",
    table(r.streams, [
      ["STREAM", (s) => s.stream],
      ["MESSAGES", (s) => s.messages],
      ["BYTES", (s) => s.bytes],
      ["FIRST SEQ", (s) => s.firstSeq],
      ["LAST SEQ", (s) => s.lastSeq],
      ["CONSUMERS", (s) => s.consumers],
    ]),
    "",
    "CONSUMERS (pending: not delivered yet; ack pending: delivered, not acknowledged)",
    table(r.consumers, [
      ["STREAM", (c) => c.stream],
      ["CONSUMER", (c) => c.consumer],
      ["PENDING", (c) => c.pending],
      ["ACK PENDING", (c) => c.ackPending],
      ["REDELIVERED", (c) => c.redelivered],
      ["ACK FLOOR", (c) => c.ackFloor],
      ["PULLS WAITING", (c) => c.pulls],
    ]),
    "",
  ];
  if (!r.deliveryQueue) {
    out.push("(pass --key or MAM_KEY with the operator key for the delivery queue and read-model rebuilds)");
    return out.join("\n");
  }
  type Notices = { waiting: number; due: number; trying: number; nextTryAt: string | null };
  const q = r.deliveryQueue as {
    messages?: number;
    due?: number;
    trying?: number;
    nextTryAt?: string | null;
    maxAttempts?: number;
    failureNotices?: Notices;
    error?: string;
  };
  const n = q.failureNotices;
  out.push(
    "DELIVERY QUEUE (outbound mail waiting for another try)",
    q.error
      ? `unknown: ${q.error}`
      : `${q.messages} messages, ${q.due} due now, ${q.trying} being tried; next try ${q.nextTryAt ?? "-"}; most attempts ${q.maxAttempts}`,
    "",
    "FAILURE NOTICES (owed to senders of mail accepted for an inbox deleted a moment before)",
    q.error
      ? `unknown: ${q.error}`
      : n
        ? `${n.waiting} waiting, ${n.due} due now, ${n.trying} being tried; next try ${n.nextTryAt ?? "-"}`
        : "unknown: not reported by this mailbox",
    "",
    "READ MODELS",
    table(Object.entries(r.readModels ?? {}), [
      ["READ MODEL", ([name]) => name],
      [
        "STATE",
        ([, p]) =>
          "error" in p
            ? `unknown: ${p.error}`
            : p.rebuilding
              ? `REBUILDING since ${p.startedAt}: ${p.appliedSeq}/${p.targetSeq} (reads may be partial, commands refused)`
              : "live",
      ],
    ]),
  );
  return out.join("\n");
}
