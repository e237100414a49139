import type { FeedEvent } from "@mam/contracts/realtime-feed.ts";
import type { ServerFrame } from "@mam/contracts/ws-frames.ts";
import { dispatchKeys, eventKeys, type Ceiling, type Filters, type Routed } from "./scope.ts";

/** What the registry needs of a connection. */
export interface Registered {
  readonly ceiling: Ceiling;
  readonly filters: Filters | null;
  /** The per-inbox path's inbox's workspace, once its subscription was decided. */
  readonly workspaceOfInbox: string | null;
  /** An event inside its filters: sent, or queued behind a replay. */
  offer(e: FeedEvent, seq: number, frame: Outgoing): void;
}

/**
 * A frame serialised and encoded once for every connection it goes to (sent as a text
 * frame: a string would be encoded again for each connection).
 */
export interface Outgoing {
  data: Buffer;
  bytes: number;
}

export const outgoing = (frame: ServerFrame): Outgoing => {
  const data = Buffer.from(JSON.stringify(frame), "utf8");
  return { data, bytes: data.length };
};

/**
 * The connections of one replica: counted per tenant (for the cap), and filed for dispatch
 * under the inboxes, workspaces or tenant they follow, so an event is offered only to the
 * connections that may want it, each once.
 */
export class Registry<C extends Registered = Registered> {
  private readonly all = new Set<C>();
  private readonly perTenant = new Map<string, number>();
  private readonly filed = new Map<string, Set<C>>();
  private readonly keysOf = new Map<C, string[]>();

  get size(): number {
    return this.all.size;
  }

  tenantCount(tenantId: string): number {
    return this.perTenant.get(tenantId) ?? 0;
  }

  add(c: C): void {
    if (this.all.has(c)) return;
    this.all.add(c);
    this.perTenant.set(c.ceiling.tenantId, this.tenantCount(c.ceiling.tenantId) + 1);
  }

  remove(c: C): void {
    if (!this.all.delete(c)) return;
    this.unfile(c);
    const n = this.tenantCount(c.ceiling.tenantId) - 1;
    if (n > 0) this.perTenant.set(c.ceiling.tenantId, n);
    else this.perTenant.delete(c.ceiling.tenantId);
  }

  /** Files a connection again after its filters changed. */
  refile(c: C): void {
    if (!this.all.has(c)) return;
    this.unfile(c);
    if (!c.filters) return;
    const keys = dispatchKeys(c.ceiling, c.filters);
    for (const k of keys) {
      let set = this.filed.get(k);
      if (!set) this.filed.set(k, (set = new Set()));
      set.add(c);
    }
    this.keysOf.set(c, keys);
  }

  private unfile(c: C): void {
    for (const k of this.keysOf.get(c) ?? []) {
      const set = this.filed.get(k);
      set?.delete(c);
      if (set?.size === 0) this.filed.delete(k);
    }
    this.keysOf.delete(c);
  }

  /** Whether any connection is filed under the inbox, workspace or tenant of an event routed there. */
  wants(r: Routed): boolean {
    for (const k of eventKeys(r)) if (this.filed.has(k)) return true;
    return false;
  }

  /** Offers an event to every connection filed under its inbox, workspace or tenant. */
  dispatch(e: FeedEvent, seq: number, frame: Outgoing): number {
    let offered = 0;
    for (const k of eventKeys(e)) {
      const set = this.filed.get(k);
      if (!set) continue;
      // A connection closed by an offer leaves the set while it is walked: walk a copy.
      for (const c of [...set]) {
        c.offer(e, seq, frame);
        offered++;
      }
    }
    return offered;
  }

  /** The connections a revocation ends. */
  select(pick: (c: C) => boolean): C[] {
    return [...this.all].filter(pick);
  }

  connections(): C[] {
    return [...this.all];
  }
}
