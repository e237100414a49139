/**
 * The reads `pnpm bench:read` measures, each through HTTP with a real key, a fixed number of
 * requests at a fixed number in flight; every answer is checked (status 200, and non-empty
 * where the data says it cannot be empty), and errors are counted, not thrown.
 */
import type { ApiCall } from "@mam/testing/http.ts";
import { pooled, type World } from "./bench-read-world.ts";

export interface Figures {
  p50: number;
  p99: number;
  perSecond: number;
  requests: number;
  errors: number;
  /** CPU ms per request of each process taking part, when a sampler was given. */
  cpuMs?: Record<string, number>;
  /** Postgres statements per request, all services together, when a counter was given. */
  statements?: number;
}

export interface Kind {
  name: string;
  /** The i-th request: its path and key. */
  request: (i: number) => { path: string; key: string };
  /** Null when the answer is sane, else what is wrong with it. */
  check: (body: any) => string | null;
}

const WARMUP = 20;

/** p50/p99 of `requests` requests of one kind, `concurrency` in flight; the first error is printed once. */
export async function measure(
  api: ApiCall,
  kind: Kind,
  requests: number,
  concurrency: number,
  cpu?: () => Map<string, number>,
  statements?: () => Promise<number>,
): Promise<Figures> {
  const times: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const one = async (i: number, record: boolean) => {
    const { path, key } = kind.request(i);
    const t = performance.now();
    const r = await api("GET", path, { key });
    const ms = performance.now() - t;
    const wrong = r.status === 200 ? kind.check(r.body) : `${r.status} ${JSON.stringify(r.body).slice(0, 200)}`;
    if (!record) return;
    times.push(ms);
    if (wrong) {
      errors++;
      firstError ??= `${path}: ${wrong}`;
    }
  };
  await pooled(
    Array.from({ length: WARMUP }, (_, i) => i),
    concurrency,
    (i) => one(i, false),
  );
  const statementsBefore = await statements?.();
  const cpuBefore = cpu?.();
  const started = performance.now();
  await pooled(
    Array.from({ length: requests }, (_, i) => i),
    concurrency,
    (i) => one(i, true),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpuAfter = cpu?.();
  const statementsAfter = await statements?.();
  const cpuMs =
    cpuBefore && cpuAfter ? Object.fromEntries([...cpuAfter].map(([name, s]) => [name, ((s - (cpuBefore.get(name) ?? 0)) * 1000) / requests])) : undefined;
  if (firstError) process.stdout.write(`  !!! ${kind.name} @${concurrency}: ${errors} of ${requests} answers wrong, first: ${firstError}\n`);
  const sorted = Float64Array.from(times).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return {
    p50: at(0.5),
    p99: at(0.99),
    perSecond: requests / elapsed,
    requests,
    errors,
    ...(cpuMs ? { cpuMs } : {}),
    ...(statementsBefore !== undefined && statementsAfter !== undefined ? { statements: (statementsAfter - statementsBefore) / requests } : {}),
  };
}

const listed = (b: any) => (Array.isArray(b?.messages) && b.messages.length > 0 ? null : "no messages");
const PAGE = 20;

/**
 * The cursors that open pages `first` .. `first + count - 1` of the tenant-wide folder view,
 * walked from page 1; null when the answer has no `nextCursor` (the API offers offsets only).
 */
async function deepCursors(api: ApiCall, key: string, first: number, count: number): Promise<string[] | null> {
  const out: string[] = [];
  let cursor: string | undefined;
  for (let page = 1; page < first + count - 1; page++) {
    const r = await api("GET", `/v1/messages?limit=${PAGE}${cursor ? `&cursor=${cursor}` : ""}`, { key });
    const next = r.body?.pagination?.nextCursor;
    if (next === undefined) return null;
    if (typeof next !== "string") break;
    cursor = next;
    if (page >= first - 1) out.push(next);
  }
  return out.length ? out : null;
}

/** Threads of more than one message in a sample of inboxes, with the inbox each is in. */
async function threadsIn(api: ApiCall, inboxes: World["inboxes"]): Promise<{ inboxId: string; key: string; threadId: string }[]> {
  const found = await pooled(inboxes, 4, async (inbox) => {
    const r = await api("GET", `/v1/inboxes/${inbox.id}/messages?limit=100`, { key: inbox.key });
    const replies: any[] = (r.body?.messages ?? []).filter((m: any) => m.inReplyTo);
    return [...new Set(replies.map((m) => m.threadId as string))].map((threadId) => ({ inboxId: inbox.id, key: inbox.key, threadId }));
  });
  return found.flat();
}

/** The request kinds at the world's present size; the deep page goes by cursor when the API offers one. */
export async function requestKinds(api: ApiCall, w: World, deepPage: number): Promise<Kind[]> {
  const tk = w.tenantKey;
  const inboxes = w.inboxes.filter((_, i) => i % 50 === 7);
  const threads = await threadsIn(api, inboxes);
  const cursors = await deepCursors(api, tk, deepPage, 20);
  const pick = <T>(xs: T[], i: number) => xs[i % xs.length]!;
  const kinds: Kind[] = [
    { name: "GET /v1/me (baseline, no query)", request: () => ({ path: "/v1/me", key: tk }), check: (b) => (b?.tenantId ? null : "no tenantId") },
    {
      name: "inbox list (ak_)",
      request: (i) => {
        const inbox = pick(inboxes, i);
        return { path: `/v1/inboxes/${inbox.id}/messages?limit=${PAGE}`, key: inbox.key };
      },
      check: listed,
    },
    { name: "folder view (wk_)", request: (i) => ({ path: `/v1/messages?limit=${PAGE}`, key: pick(w.workspaces, i * 7).key }), check: listed },
    { name: "folder view (tk_)", request: () => ({ path: `/v1/messages?limit=${PAGE}`, key: tk }), check: listed },
    { name: "thread grouping (tk_)", request: () => ({ path: `/v1/messages?group=thread&limit=${PAGE}`, key: tk }), check: listed },
    {
      name: "folder counts (tk_)",
      request: () => ({ path: "/v1/messages/folders/counts", key: tk }),
      check: (b) => (b?.inbox?.total > 0 ? null : "inbox total 0"),
    },
  ];
  if (threads.length) {
    kinds.push({
      name: "a thread (ak_)",
      request: (i) => {
        const t = pick(threads, i);
        return { path: `/v1/inboxes/${t.inboxId}/threads/${t.threadId}`, key: t.key };
      },
      check: (b) => (Array.isArray(b?.messages) && b.messages.length > 1 ? null : "thread of fewer than 2 messages"),
    });
  } else process.stdout.write("  !!! no thread of more than one message found in the sampled inboxes: `a thread` not measured\n");
  if (cursors)
    kinds.push({
      name: `deep page ${deepPage}+ by cursor (tk_)`,
      request: (i) => ({ path: `/v1/messages?limit=${PAGE}&cursor=${pick(cursors, i)}`, key: tk }),
      check: listed,
    });
  else process.stdout.write("  (the folder view answers without pagination.nextCursor: the deep page is measured by offset only)\n");
  kinds.push({
    name: `deep page ${deepPage}+ by offset (tk_)`,
    request: (i) => ({ path: `/v1/messages?limit=${PAGE}&offset=${(deepPage - 1 + (i % 20)) * PAGE}`, key: tk }),
    check: listed,
  });
  return kinds;
}
