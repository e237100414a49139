import { spawnSync } from "node:child_process";

/**
 * `pnpm fuzz:api`: the API fuzz test (test/e2e/fuzz-api.test.ts) with many more cases than
 * CI runs, on a fresh seed unless FUZZ_SEED names one. The seed is printed first: a failure
 * is replayed with `FUZZ_SEED=<seed> FUZZ_RUNS=<runs> pnpm fuzz:api`.
 */
const seed = process.env.FUZZ_SEED ?? String(Math.floor(Math.random() * 2 ** 31));
const runs = process.env.FUZZ_RUNS ?? "200";
console.log(`fuzz:api FUZZ_SEED=${seed} FUZZ_RUNS=${runs} (cases per route)`);
const r = spawnSync("npx", ["vitest", "run", "test/e2e/fuzz-api.test.ts"], { stdio: "inherit", env: { ...process.env, FUZZ_SEED: seed, FUZZ_RUNS: runs } });
process.exitCode = r.status ?? 1;
