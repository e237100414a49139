/**
 * The tenant `pnpm bench:read` reads from, provisioned through the API (tenants, their
 * workspaces with a wk_ key each, inboxes with their ak_ keys), and the state file that lets
 * a later run continue on the same data (BENCH_READ_KEEP=1): the isolation tag (its schemas
 * and NATS prefix), the keys, how many messages are filed, and the figures measured so far.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { ApiCall } from "@mam/testing/http.ts";
import type { Figures } from "./bench-read-load.ts";

export const STATE_FILE = ".bench-read-state.json";

export interface WorldInbox {
  id: string;
  tenantId: string;
  email: string;
  workspaceId: string;
  /** ak_ */
  key: string;
}

export interface World {
  tag: string;
  /** The tenant measured (the first): its tk_ key sees its share of the workspaces. */
  tenantId: string;
  /** tk_ */
  tenantKey: string;
  /** Every tenant, the measured one first. */
  tenants: { id: string; key: string }[];
  workspaces: { id: string; key: string }[];
  inboxes: WorldInbox[];
  /** Messages 0..seeded-1 are filed. */
  seeded: number;
  /** Figures by size, then by "<request kind> @<in flight>". */
  figures: Record<string, Record<string, Figures>>;
}

export const readWorld = (): World | undefined => (existsSync(STATE_FILE) ? (JSON.parse(readFileSync(STATE_FILE, "utf8")) as World) : undefined);
export const writeWorld = (w: World) => writeFileSync(STATE_FILE, `${JSON.stringify(w)}\n`);
export const forgetWorld = () => rmSync(STATE_FILE, { force: true });

/** Runs `fn` over `items`, `concurrency` at a time. */
export async function pooled<T, R>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!, i);
    }),
  );
  return out;
}

/** A call that must succeed; a new workspace reaches the mailbox through an event, so a refusal is tried again for a while. */
async function must(api: ApiCall, method: string, path: string, key: string, body: unknown, what: string): Promise<any> {
  for (let attempt = 0; ; attempt++) {
    const r = await api(method, path, { key, body });
    if (r.status === 200 || r.status === 201) return r.body;
    if (attempt >= 50) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

/**
 * `tenants` tenants share the workspaces evenly (the first gets the remainder). Filings of one
 * tenant are serialised on its lock, so the seed files in parallel only across tenants.
 */
export async function provision(api: ApiCall, operatorKey: string, tag: string, tenants: number, workspaces: number, inboxesEach: number): Promise<World> {
  const made = await pooled(
    Array.from({ length: tenants }, (_, t) => t),
    4,
    (t) => must(api, "POST", "/v1/tenants", operatorKey, { name: `Bench read ${t}` }, "tenant"),
  );
  const share = (t: number) => Math.floor(workspaces / tenants) + (t === 0 ? workspaces % tenants : 0);
  const owned = await pooled(made, 2, async (tenant, t) => {
    const tk: string = tenant.key.key;
    const extra = await pooled(
      Array.from({ length: share(t) - 1 }, (_, i) => i + 1),
      4,
      (w) => must(api, "POST", "/v1/workspaces", tk, { name: `Bench ${t}-${w}`, slug: `bench-${t}-${w}` }, "workspace"),
    );
    return [tenant.workspace.id as string, ...extra.map((w) => w.id as string)].map((id) => ({ id, tenantId: tenant.tenant.id as string, tk }));
  });
  const all = owned.flat();
  const keys = await pooled(all, 4, (ws) => must(api, "POST", `/v1/workspaces/${ws.id}/keys`, ws.tk, { name: "bench" }, "workspace key"));
  const slots = all.flatMap((ws, w) => Array.from({ length: inboxesEach }, (_, i) => ({ ws, username: `bench-w${w}-i${i}` })));
  const inboxes = await pooled(slots, 8, async (s) => {
    const b = await must(api, "POST", "/v1/inboxes", s.ws.tk, { username: s.username, workspaceId: s.ws.id }, "inbox");
    return { id: b.id as string, tenantId: s.ws.tenantId, email: b.email as string, workspaceId: s.ws.id, key: b.apiKey as string };
  });
  return {
    tag,
    tenantId: made[0].tenant.id,
    tenantKey: made[0].key.key,
    tenants: made.map((m) => ({ id: m.tenant.id as string, key: m.key.key as string })),
    workspaces: all.map((ws, i) => ({ id: ws.id, key: keys[i]!.key as string })),
    inboxes,
    seeded: 0,
    figures: {},
  };
}
