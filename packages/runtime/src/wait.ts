import { setTimeout as sleep } from "node:timers/promises";

/** Polls a condition until it holds, failing after a bound. */
export async function waitFor(cond: () => boolean | Promise<boolean>, o: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<void> {
  const deadline = Date.now() + (o.timeoutMs ?? 5_000);
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${o.what ?? "condition"}`);
    await sleep(o.intervalMs ?? 20);
  }
}
