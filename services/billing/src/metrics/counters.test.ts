import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "@mam/db/database.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { migrations } from "../db/migrations/index.ts";
import type { BillingDb } from "../db/schema.ts";
import { CounterChanges, cumBefore, type Kind } from "./counters.ts";

interface Change {
  scope: number;
  kind: Kind;
  /** Seconds after the epoch of the run: changes come in any order, late ones too. */
  at: number;
  delta: number;
}

/** The rows one event at a time leaves (the rule CounterChanges must keep): (scope:kind) → [at, cum] in time order. */
function oneAtATime(changes: Change[], scopes: string[], t0: number): Map<string, [number, number][]> {
  const rows = new Map<string, [number, number][]>();
  for (const c of changes) {
    const key = `${scopes[c.scope]}:${c.kind}`;
    const list = rows.get(key) ?? [];
    rows.set(key, list);
    const last = list.at(-1);
    const at = t0 + c.at * 1000;
    if (last && at <= last[0]) last[1] += c.delta;
    else list.push([at, (last?.[1] ?? 0) + c.delta]);
  }
  return rows;
}

describe("CounterChanges", () => {
  const iso = isolate();
  let store: Database<BillingDb>;

  beforeAll(async () => {
    store = await openDatabase<BillingDb>({
      url: iso.urls.DATABASE_URL,
      schema: iso.schema("billing"),
      logger: createLogger("test", "warn"),
      migrations,
      poolSize: 4,
    });
  });
  afterAll(async () => {
    await store.close();
    await iso.cleanup();
  });

  it("leaves the rows that applying the same changes one event at a time would, however they are batched", async () => {
    const change = fc.record({
      scope: fc.integer({ min: 0, max: 2 }),
      kind: fc.constantFrom<Kind>("sent", "inboxes"),
      at: fc.integer({ min: 0, max: 40 }),
      delta: fc.integer({ min: -2, max: 3 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(change, { minLength: 1, maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1 }),
        async (changes, cuts) => {
          const scopes = [randomUUID(), randomUUID(), randomUUID()];
          const t0 = Date.UTC(2026, 0, 1);
          // The changes in batches of the sizes `cuts` gives, each batch in its own transaction.
          for (let i = 0, c = 0; i < changes.length; c++) {
            const size = cuts[c % cuts.length]!;
            const batch = new CounterChanges();
            for (const x of changes.slice(i, i + size)) batch.add(scopes[x.scope]!, x.kind, new Date(t0 + x.at * 1000), x.delta);
            await store.db.transaction().execute((tx) => batch.write(tx));
            i += size;
          }
          const stored = await store.db
            .selectFrom("metric_counters")
            .select(["scope_id", "kind", "at", "cum"])
            .where("scope_id", "in", scopes)
            .orderBy("scope_id")
            .orderBy("kind")
            .orderBy("at")
            .execute();
          const got = new Map<string, [number, number][]>();
          for (const r of stored) {
            const key = `${r.scope_id}:${r.kind}`;
            got.set(key, [...(got.get(key) ?? []), [r.at.getTime(), Number(r.cum)]]);
          }
          expect(got).toEqual(oneAtATime(changes, scopes, t0));
          // And the totals read back are the sums of the changes.
          for (const [i, s] of scopes.entries()) {
            const sum = changes.filter((x) => x.scope === i && x.kind === "sent").reduce((n, x) => n + x.delta, 0);
            expect(await cumBefore(store.db, s, "sent")).toBe(sum);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it("lets two writers of the same counters interleave without losing a change", async () => {
    const scope = randomUUID();
    const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
    await Promise.all(
      Array.from({ length: 8 }, (_, w) =>
        (async () => {
          for (let i = 0; i < 10; i++) {
            const batch = new CounterChanges();
            batch.add(scope, "sent", at(w * 10 + i), 1);
            batch.add(scope, "received", at(i), 2);
            await store.db.transaction().execute((tx) => batch.write(tx));
          }
        })(),
      ),
    );
    expect(await cumBefore(store.db, scope, "sent")).toBe(80);
    expect(await cumBefore(store.db, scope, "received")).toBe(160);
  });
});
