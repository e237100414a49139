/**
 * The tenant `pnpm bench:read` reads from, provisioned through the API (1 tenant, its
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
  email: string;
  workspaceId: string;
  /** ak_ */
  key: string;
}

export interface World {
  tag: string;
  tenantId: string;
  /** tk_ */
  tenantKey: string;
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

export async function provision(api: ApiCall, operatorKey: string, tag: string, workspaces: number, inboxesEach: number): Promise<World> {
  const tenant = await must(api, "POST", "/v1/tenants", operatorKey, { name: "Bench read" }, "tenant");
  const tk: string = tenant.key.key;
  const extra = await pooled(
    Array.from({ length: workspaces - 1 }, (_, i) => i + 1),
    4,
    (w) => must(api, "POST", "/v1/workspaces", tk, { name: `Bench ${w}`, slug: `bench-${w}` }, "workspace"),
  );
  const ids: string[] = [tenant.workspace.id, ...extra.map((w) => w.id as string)];
  const keys = await pooled(ids, 4, (id) => must(api, "POST", `/v1/workspaces/${id}/keys`, tk, { name: "bench" }, "workspace key"));
  const slots = ids.flatMap((workspaceId, w) => Array.from({ length: inboxesEach }, (_, i) => ({ workspaceId, username: `bench-w${w}-i${i}` })));
  const inboxes = await pooled(slots, 8, async (s) => {
    const b = await must(api, "POST", "/v1/inboxes", tk, { username: s.username, workspaceId: s.workspaceId }, "inbox");
    return { id: b.id as string, email: b.email as string, workspaceId: s.workspaceId, key: b.apiKey as string };
  });
  return {
    tag,
    tenantId: tenant.tenant.id,
    tenantKey: tk,
    workspaces: ids.map((id, i) => ({ id, key: keys[i]!.key as string })),
    inboxes,
    seeded: 0,
    figures: {},
  };
}
