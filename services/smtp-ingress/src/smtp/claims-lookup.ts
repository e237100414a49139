import { call } from "@mam/bus/rpc-client.ts";
import type { Bus } from "@mam/bus/connection.ts";
import { DirectoryLookup } from "@mam/contracts/mailbox-api.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import type { Mailbox } from "./directory.ts";

/** Addresses in one request at most (the contract's bound). */
const MAX_BATCH = 100;
const TIMEOUT_MS = 2_000;

type Answer = Mailbox | null | Error;

/**
 * Asks the mailbox's read model which inbox claims an address the directory lacks (see the
 * mailbox's directoryLookup): it holds what commands committed, published or not. One request
 * at a time per replica: the addresses missed while one is out go together in the next, so a
 * flood of unknown addresses costs a request per round trip, not one each. A request that
 * fails (the mailbox down, slow past the timeout, rebuilding) fails every address waiting
 * then too, so that none waits for a queue of timeouts: the caller falls back on the stream.
 * And for `quietMs` after a failure misses are not asked about at all (a hung mailbox would
 * cost each of them the timeout).
 */
export class ClaimsLookup {
  private readonly pending = new Map<string, ((a: Answer) => void)[]>();
  private asking = false;
  private lastFailureLog = 0;
  private quiet?: { until: number; error: Error };

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
    private readonly quietMs = 5_000,
  ) {}

  /** The inbox claiming the address; null when none does; rejects when the mailbox cannot say. */
  of(address: string): Promise<Mailbox | null> {
    if (this.quiet && performance.now() < this.quiet.until) return Promise.reject(this.quiet.error);
    const a = address.toLowerCase();
    return new Promise((resolve, reject) => {
      this.pending.set(a, [...(this.pending.get(a) ?? []), (r) => (r instanceof Error ? reject(r) : resolve(r))]);
      if (!this.asking) void this.ask();
    });
  }

  private async ask(): Promise<void> {
    this.asking = true;
    try {
      while (this.pending.size) {
        const batch = [...this.pending].slice(0, MAX_BATCH);
        for (const [a] of batch) this.pending.delete(a);
        const found = await this.request(batch.map(([a]) => a));
        if (found instanceof Error) {
          this.quiet = { until: performance.now() + this.quietMs, error: found };
          // Said once in a while: every miss falls back on the stream meanwhile.
          if (Date.now() - this.lastFailureLog > 30_000) {
            this.lastFailureLog = Date.now();
            this.logger.warn({ err: found }, "directory: the mailbox cannot look addresses up; the stream decides meanwhile");
          }
          for (const [, waiters] of [...batch, ...this.pending]) for (const w of waiters) w(found);
          this.pending.clear();
          continue;
        }
        for (const [a, waiters] of batch) for (const w of waiters) w(found.get(a) ?? null);
      }
    } finally {
      this.asking = false;
    }
  }

  private async request(addresses: string[]): Promise<Map<string, Mailbox> | Error> {
    try {
      const reply = await call(this.bus, RpcContracts.mailbox.directoryLookup, { addresses }, { timeoutMs: TIMEOUT_MS });
      if (!reply.ok) return new Error(`${reply.error.code}: ${reply.error.error}`);
      // Checked all the same: it comes from another process.
      const { entries } = DirectoryLookup.parse(reply.body);
      return new Map(entries.map((e) => [e.address, { tenantId: e.tenantId, workspaceId: e.workspaceId, inboxId: e.inboxId }]));
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }
}
