import { setTimeout as sleep } from "node:timers/promises";
import { DeliverPolicy, type ConsumerMessages } from "@nats-io/jetstream";
import { call } from "@mam/bus/rpc-client.ts";
import { DirectoryPage } from "@mam/contracts/mailbox-api.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import type { Bus } from "@mam/bus/connection.ts";
import { streamEnd } from "@mam/bus/consumer.ts";
import { probeAfter, type ProbeAnswer } from "@mam/bus/stream-range.ts";
import { contextEventsFilter } from "@mam/contracts/envelope.ts";
import { MAILBOX_CONTEXT, parseMailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { Logger } from "@mam/runtime/logger.ts";

export interface Mailbox {
  tenantId: string;
  workspaceId: string;
  inboxId: string;
}

/**
 * Addresses per snapshot page: an entry is about 190 bytes of JSON, so a page stays well
 * inside one NATS message. A larger answer would travel through the RPC reply bucket, which
 * smtp-ingress's NATS user may not read (infra/nats/nats.conf): the snapshot would fail and
 * the directory fall back to replaying every mailbox event.
 */
const PAGE = 2_000;
/** How long a round waits for the consumer to apply an entry its probe found, and the pause after a failed round. */
const APPLY_WAIT_MS = 250;
const ADDRESS_EVENTS = new Set(["InboxCreated", "AddressAdded", "AddressRemoved", "InboxDeleted"]);
/** The shortest round of the misses' checks (see probeWhileWaited). */
const MISS_ROUND_MS = 20;
/** The longest a round is waited for; one that takes longer (a request lost) is left to end alone. */
const ROUND_LIMIT_MS = 2_000;
/** How long a miss waits for the directory to show it has every mailbox event stored before it (see current). */
const MISS_WAIT_MS = 5_000;

/** A miss waiting to learn the directory holds every mailbox event stored when it came. */
interface Waiter {
  /** When it came (performance.now()). */
  since: number;
  /** The stream's last sequence, as first read by a round (or its probe) begun after it came. */
  bound?: number;
  done: (current: boolean) => void;
}

/**
 * Every address of the platform, in memory, kept from the mailbox's events through an
 * ordered consumer: RCPT for a known address is answered without a round trip (a miss asks
 * the mailbox, see ClaimsLookup).
 */
export class Directory {
  private readonly byAddress = new Map<string, Mailbox>();
  private messages?: ConsumerMessages;
  private caughtUp = false;
  /** The stream sequence of the last mailbox event applied (or the snapshot's). */
  private appliedSeq = 0;
  private readonly waiters = new Set<Waiter>();
  private probing = false;
  private stopped = false;

  private get filter(): string {
    return contextEventsFilter(this.bus.prefix, MAILBOX_CONTEXT);
  }

  constructor(
    private readonly bus: Bus,
    private readonly stream: string,
    private readonly logger: Logger,
    private readonly snapshotWaitMs = 10_000,
  ) {}

  lookup(address: string): Mailbox | undefined {
    return this.byAddress.get(address.toLowerCase());
  }

  get size(): number {
    return this.byAddress.size;
  }

  get ready(): boolean {
    return this.caughtUp;
  }

  /**
   * Caught up once it holds every mailbox event the stream held when asked (see current):
   * asked of the server, not of the consumer's pending count (nats-server 2.9 has said 0 with
   * entries still to come, and SMTP, listening early, would answer 550 for an address created
   * just before).
   */
  async checkCaughtUp(): Promise<boolean> {
    if (!this.caughtUp && this.messages) this.caughtUp = await this.current();
    return this.caughtUp;
  }

  /**
   * Resolves true once the directory holds every mailbox event the stream held when this was
   * called: an address missing then has no inbox, as far as the stream has heard (the mailbox
   * answers an inbox's creation once its event is stored, unless NATS takes over 2 s). False
   * when that is not known within `timeoutMs` (the consumer stalled, NATS unreachable). Misses
   * share the rounds of checks, one round at a time (but for one left to end alone past
   * ROUND_LIMIT_MS), and while the consumer is behind the next probe waits for it: misses cost
   * about four probes a second at most, however many there are.
   */
  current(timeoutMs = MISS_WAIT_MS): Promise<boolean> {
    if (this.stopped) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => w.done(false), timeoutMs);
      const w: Waiter = {
        since: performance.now(),
        done: (current) => {
          clearTimeout(timer);
          this.waiters.delete(w);
          resolve(current);
        },
      };
      this.waiters.add(w);
      void this.probeWhileWaited();
    });
  }

  /** Gives waiters that came before `began` and have no bound yet `through`, a stream end read since. */
  private bind(began: number, through: number): void {
    for (const w of this.waiters) if (w.since <= began) w.bound ??= through;
  }

  /**
   * Settles the waiters whose bound is in: applied already, or shown by a probe's answer to
   * hold no mailbox event past what was applied when it began (none up to the bound, or the
   * first one beyond it).
   */
  private settle(answer?: ProbeAnswer): void {
    for (const w of this.waiters) {
      if (w.bound === undefined) continue;
      if (this.appliedSeq >= w.bound) w.done(true);
      else if (answer && (answer.first === undefined ? answer.through >= w.bound : answer.first > w.bound)) w.done(true);
    }
  }

  /**
   * While misses wait: the stream's end is read (it bounds what they need), the consumer is
   * given a moment to reach it (on a busy stream it does, with events after it), and only
   * then is the server probed (other subjects' events after the last mailbox one). At most one
   * round every MISS_ROUND_MS, however many misses there are.
   */
  private async probeWhileWaited(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      while (this.waiters.size && !this.stopped) {
        const round = sleep(MISS_ROUND_MS);
        const began = performance.now();
        const work = (async () => {
          const through = await streamEnd(this.bus, this.stream);
          this.bind(began, through);
          await this.applied(through, MISS_ROUND_MS);
          this.settle();
          if (this.waiters.size) {
            const probed = performance.now();
            const answer = await probeAfter(this.bus, this.stream, this.filter, this.appliedSeq);
            if (answer) {
              this.bind(probed, answer.through);
              this.settle(answer);
            }
            // An entry to apply first: probed again once the consumer has it (or a while later, stalled).
            if (this.waiters.size && answer?.first !== undefined) await this.applied(answer.first, APPLY_WAIT_MS);
          }
        })();
        try {
          // A request lost on the way (a reconnect) would hold every miss until its own timeout
          // (10 s), past their wait: the round is left to end alone (its answers still count).
          work.catch(() => undefined);
          const late = Symbol();
          // An unreferenced timer: it outlives most rounds, and must not hold the process at its end.
          if ((await Promise.race([work, sleep(ROUND_LIMIT_MS, late, { ref: false })])) === late) throw new Error(`no answer within ${ROUND_LIMIT_MS} ms`);
        } catch (err) {
          this.logger.warn({ err: (err as Error).message }, "directory: could not ask the server whether mailbox events remain");
          await sleep(APPLY_WAIT_MS);
        }
        await round;
      }
    } finally {
      this.probing = false;
    }
  }

  /** Until the consumer has applied `seq`, at most `maxMs`. */
  private async applied(seq: number, maxMs: number): Promise<void> {
    const deadline = performance.now() + maxMs;
    while (this.appliedSeq < seq && performance.now() < deadline && !this.stopped) await sleep(5);
  }

  /**
   * Loads the addresses from the mailbox's snapshot, then follows the events after it: the
   * start costs as much as there are addresses, not as there were events (every message
   * is one). Without a mailbox to ask, it replays the whole stream instead.
   */
  async start(): Promise<void> {
    const fromSeq = await this.loadSnapshotPatiently().catch((err: unknown) => {
      this.logger.warn({ err: (err as Error).message }, "directory: no snapshot from the mailbox; replaying every mailbox event");
      this.byAddress.clear();
      return 0;
    });
    this.appliedSeq = fromSeq;
    const consumer = await this.bus.js.consumers.get(this.stream, {
      filter_subjects: this.filter,
      ...(fromSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq + 1 } : {}),
    });
    this.messages = await consumer.consume();
    void (async () => {
      for await (const m of this.messages!) {
        try {
          const type = m.subject.split(".").at(-1) ?? "";
          // Most mailbox events (every message) say nothing about addresses: not even parsed.
          if (ADDRESS_EVENTS.has(type)) this.apply(m.json());
        } catch (err) {
          this.logger.warn({ err, seq: m.seq }, "directory: unreadable event");
        }
        this.appliedSeq = m.seq;
        if (this.waiters.size) this.settle();
      }
    })();
  }

  /** The mailbox may be starting at the same time: asked again for a while when it does not answer. */
  private async loadSnapshotPatiently(): Promise<number> {
    const deadline = Date.now() + this.snapshotWaitMs;
    for (;;) {
      try {
        return await this.loadSnapshot();
      } catch (err) {
        this.byAddress.clear();
        if (Date.now() >= deadline) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** Every page of the snapshot; resolves with the sequence to follow the events from. */
  private async loadSnapshot(): Promise<number> {
    let after: string | undefined;
    let fromSeq: number | undefined;
    for (;;) {
      const reply = await call(this.bus, RpcContracts.mailbox.directoryPage, { after, limit: PAGE }, { timeoutMs: 10_000 });
      if (!reply.ok) throw new Error(`${reply.error.code}: ${reply.error.error}`);
      // Checked all the same: it comes from another process.
      const page = DirectoryPage.parse(reply.body);
      // The first page's sequence: each later page holds at least what the first did.
      fromSeq ??= page.fromSeq;
      for (const e of page.entries) this.byAddress.set(e.address, { tenantId: e.tenantId, workspaceId: e.workspaceId, inboxId: e.inboxId });
      if (page.entries.length < PAGE) break;
      after = page.entries.at(-1)!.address;
    }
    this.logger.info({ addresses: this.byAddress.size, fromSeq }, "directory: snapshot loaded");
    return fromSeq;
  }

  private apply(raw: unknown): void {
    const e = parseMailboxEvent(raw);
    const at = { tenantId: e.tenantId!, workspaceId: e.workspaceId! };
    switch (e.type) {
      case "InboxCreated":
        this.byAddress.set(e.data.address, { ...at, inboxId: e.data.inboxId });
        return;
      case "AddressAdded":
        this.byAddress.set(e.data.address, { ...at, inboxId: e.data.inboxId });
        return;
      case "AddressRemoved":
        if (this.byAddress.get(e.data.address)?.inboxId === e.data.inboxId) this.byAddress.delete(e.data.address);
        return;
      case "InboxDeleted":
        for (const a of e.data.addresses) if (this.byAddress.get(a)?.inboxId === e.data.inboxId) this.byAddress.delete(a);
        return;
      default:
        return;
    }
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.waiters) w.done(false);
    this.messages?.stop();
  }
}
