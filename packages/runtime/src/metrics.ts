import { collectDefaultMetrics, Counter, Histogram, type Metric, Registry } from "prom-client";

/** The text exposition format's content type (prom-client's). */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** How long a value read at scrape time is reused: a burst of scrapes reads NATS and Postgres once. */
export const SCRAPE_CACHE_MS = 2_000;

/**
 * How long a scrape waits for a value read at scrape time: NATS or Postgres out of reach
 * must not hold up (and time out) the scrape that would show it.
 */
export const SOURCE_TIMEOUT_MS = 1_500;

/** Seconds: from a fast RPC answered from memory to a slow send through an outside server. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface Sample<L extends string> {
  labels?: Partial<Record<L, string>>;
  value: number;
}

/** What a watched gauge reads at scrape time. */
export type Source<L extends string> = () => Promise<Sample<L>[]> | Sample<L>[];

let processRegistry: Registry | undefined;

/** prom-client's default metrics (CPU, memory, event loop lag, GC, handles): once per process, shown by every service in it. */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * One service's metrics, in a registry of its own. A process runs one service in
 * production; tests run several in one process, each keeping its own series. Metrics are
 * made on first use and found again by name afterwards, so replicas in one process share
 * them.
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly watched = new Map<string, Set<Source<string>>>();

  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.existing(name) ?? new Counter<L>({ name, help, labelNames, registers: [this.registry] });
  }

  histogram<L extends string = never>(name: string, help: string, labelNames: readonly L[] = [], buckets = LATENCY_BUCKETS): Histogram<L> {
    return this.existing(name) ?? new Histogram<L>({ name, help, labelNames, buckets, registers: [this.registry] });
  }

  /**
   * A gauge read only when scraped, from `source` (cached SCRAPE_CACHE_MS): no timer polls
   * anything between scrapes. Several sources may feed one gauge (replicas in one process).
   * A source that fails, or takes longer than SOURCE_TIMEOUT_MS, leaves its series out of
   * that scrape rather than failing or delaying it.
   * Returns what stops watching.
   */
  watch<L extends string>(name: string, help: string, labelNames: readonly L[], source: Source<L>): () => void {
    let sources = this.watched.get(name);
    if (!sources) {
      const all = new Set<Source<string>>();
      sources = all;
      this.watched.set(name, all);
      // Not a prom-client Gauge: one without labels always shows a value (0 at worst), and a
      // source that could not be read must show none, not a backlog of 0.
      const gauge = {
        name,
        help,
        type: "gauge",
        aggregator: "sum",
        async get() {
          const read = await Promise.all([...all].map((s) => within(SOURCE_TIMEOUT_MS, s).catch(() => [] as Sample<string>[])));
          // Replicas in one process report the same series: one sample each.
          const values = new Map<string, { labels: Partial<Record<string, string>>; value: number }>();
          for (const samples of read)
            for (const s of samples) {
              // The declared labels only, so a source cannot add a dimension by mistake.
              const labels = Object.fromEntries(labelNames.flatMap((l) => (s.labels?.[l] === undefined ? [] : [[l, s.labels[l]]])));
              values.set(JSON.stringify(labels), { labels, value: s.value });
            }
          return { name, help, type: "gauge", aggregator: "sum", values: [...values.values()] };
        },
      };
      this.registry.registerMetric(gauge as unknown as Metric);
    }
    const cachedSource = cached(source as Source<string>, SCRAPE_CACHE_MS);
    sources.add(cachedSource);
    return () => void sources.delete(cachedSource);
  }

  /** The service's series, then the process's, in the text exposition format. */
  async exposition(): Promise<string> {
    const [own, proc] = await Promise.all([this.registry.metrics(), processMetrics().metrics()]);
    return `${own}\n${proc}`;
  }

  private existing<M>(name: string): M | undefined {
    return this.registry.getSingleMetric(name) as M | undefined;
  }
}

const byService = new Map<string, ServiceMetrics>();

/** The metrics of the service named so in this process. */
export function metricsOf(service: string): ServiceMetrics {
  let m = byService.get(service);
  if (!m) byService.set(service, (m = new ServiceMetrics()));
  return m;
}

/** `read`'s result, or a failure once `ms` have passed. */
function within<T>(ms: number, read: () => Promise<T> | T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([Promise.resolve().then(read), late]).finally(() => clearTimeout(timer));
}

/**
 * `read`, answered from its last result for `ttlMs` after it came; callers arriving while a
 * read runs share it, however long it takes (a slow Postgres must not get one more pending
 * read per scrape: each scrape gives up on it after SOURCE_TIMEOUT_MS, the read goes on).
 */
export function cached<T>(read: () => Promise<T> | T, ttlMs: number): () => Promise<T> {
  let last: { at?: number; value: Promise<T> } | undefined;
  return () => {
    if (last && (last.at === undefined || performance.now() - last.at < ttlMs)) return last.value;
    const entry: { at?: number; value: Promise<T> } = { value: Promise.resolve().then(read) };
    entry.value.then(
      () => {
        entry.at = performance.now();
      },
      // A failure is not kept: the next scrape tries again.
      () => {
        if (last === entry) last = undefined;
      },
    );
    last = entry;
    return entry.value;
  };
}
