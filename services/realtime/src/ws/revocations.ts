import type { Bus } from "@mam/bus/connection.ts";
import { IDENTITY_CONTEXT, KeyRevokedV1, WorkspaceDeletedV1 } from "@mam/contracts/identity-events.ts";
import { InboxDeletedV1, MAILBOX_CONTEXT } from "@mam/contracts/mailbox-events.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import { Follower } from "./follow.ts";
import type { Ceiling } from "./scope.ts";

export type Ended = { kind: "key" | "workspace" | "inbox"; id: string };

const WATCHES = [
  { context: IDENTITY_CONTEXT, type: "KeyRevoked", ended: (d: unknown): Ended => ({ kind: "key", id: KeyRevokedV1.parse(d).keyId }) },
  { context: IDENTITY_CONTEXT, type: "WorkspaceDeleted", ended: (d: unknown): Ended => ({ kind: "workspace", id: WorkspaceDeletedV1.parse(d).workspaceId }) },
  { context: MAILBOX_CONTEXT, type: "InboxDeleted", ended: (d: unknown): Ended => ({ kind: "inbox", id: InboxDeletedV1.parse(d).inboxId }) },
];

/**
 * Every replica hears every revoked key, deleted workspace and deleted inbox (an ordered
 * consumer per event type: NATS 2.9 takes one filter subject per consumer) and closes the
 * connections they end. Each is remembered for a while, so that a connection arriving
 * with a token minted just before is closed too; the consumers start that far back.
 */
export class Revocations {
  private readonly recent = new Map<string, number>();
  private added = 0;
  private readonly followers: Follower[] = [];

  constructor(private readonly o: { bus: Bus; stream: string; memoryMs: number; logger: Logger; onEnded: (e: Ended) => void }) {}

  async start(): Promise<void> {
    const since = new Date(Date.now() - this.o.memoryMs).toISOString();
    for (const w of WATCHES) {
      const f = new Follower({
        bus: this.o.bus,
        stream: this.o.stream,
        filter: `${this.o.bus.prefix}evt.${w.context}.*.*.${w.type}`,
        from: { time: since },
        logger: this.o.logger,
        what: `${w.type} watch`,
        handle: (m) => {
          const ended = w.ended((m.json() as { data?: unknown }).data);
          this.remember(ended);
          this.o.onEnded(ended);
        },
      });
      await f.start();
      this.followers.push(f);
    }
  }

  private remember(e: Ended): void {
    const now = Date.now();
    // Expired ones are swept now and then: the map holds about one window's worth.
    if (++this.added % 1024 === 0) for (const [k, until] of this.recent) if (until < now) this.recent.delete(k);
    this.recent.set(`${e.kind}:${e.id}`, now + this.o.memoryMs);
  }

  private seen(kind: Ended["kind"], id: string | null): boolean {
    if (!id) return false;
    const until = this.recent.get(`${kind}:${id}`);
    return until !== undefined && until >= Date.now();
  }

  /** Whether a connection with this ceiling was ended a moment ago (its key, a workspace of its, its inbox). */
  ended(c: Ceiling, workspaceOfInbox: string | null = null): boolean {
    if (this.seen("key", c.keyId) || this.seen("inbox", c.inboxId) || this.seen("workspace", workspaceOfInbox)) return true;
    return c.workspaces !== "*" && c.workspaces.some((w) => this.seen("workspace", w));
  }

  async stop(): Promise<void> {
    for (const f of this.followers.splice(0)) await f.stop();
  }
}
