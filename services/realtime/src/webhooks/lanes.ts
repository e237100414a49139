/** How much one replica holds and runs at once. */
export interface LaneLimits {
  /** Attempts in flight to one webhook. */
  perEndpoint: number;
  /** Attempts in flight to one tenant's webhooks together. */
  perTenant: number;
  /** Attempts in flight in all. */
  global: number;
  /** Rows one webhook may hold here (in flight and waiting their turn). */
  aheadPerEndpoint: number;
  /** Rows one tenant's webhooks may hold here together. */
  heldPerTenant: number;
  /** Rows held here in all. */
  heldMax: number;
  /** Bytes of the rows held here in all (their bodies): a single row is held whatever its size. */
  heldBytesMax: number;
}

interface Count {
  /** Admitted: waiting, in flight, or about to be queued. */
  held: number;
  inFlight: number;
}

interface Lane<R> extends Count {
  tenant: Count & { id: string };
  waiting: R[];
}

/** A row's webhook and tenant. */
export interface LaneRef {
  webhook_id: string;
  tenant_id: string;
}

/**
 * One line per webhook of the deliveries this replica holds, and which go next: in turn
 * across webhooks, never more in flight than any cap. A webhook at its cap keeps its rows
 * waiting in its own line while the others' go; so does a tenant at its own (whose many slow
 * or dead webhooks would otherwise take every slot of the replica from the other tenants).
 */
export class Lanes<R extends LaneRef> {
  private readonly lanes = new Map<string, Lane<R>>();
  private readonly tenants = new Map<string, Count & { id: string }>();
  private held = 0;
  private heldBytes = 0;
  private running = 0;

  constructor(
    private readonly limits: LaneLimits,
    /** The bytes a row holds (what `admit` was told). */
    private readonly sizeOf: (row: R) => number,
  ) {}

  /** Room for one more row of this webhook (of this tenant), of this many bytes: counted as held from now on. */
  admit(ref: LaneRef, bytes: number): boolean {
    const lane = this.lanes.get(ref.webhook_id);
    if (this.held >= this.limits.heldMax || (lane?.held ?? 0) >= this.limits.aheadPerEndpoint) return false;
    if ((this.tenants.get(ref.tenant_id)?.held ?? 0) >= this.limits.heldPerTenant) return false;
    if (this.held > 0 && this.heldBytes + bytes > this.limits.heldBytesMax) return false;
    if (lane) lane.held++;
    else {
      let tenant = this.tenants.get(ref.tenant_id);
      if (!tenant) this.tenants.set(ref.tenant_id, (tenant = { id: ref.tenant_id, held: 0, inFlight: 0 }));
      this.lanes.set(ref.webhook_id, { held: 1, inFlight: 0, waiting: [], tenant });
    }
    this.lanes.get(ref.webhook_id)!.tenant.held++;
    this.held++;
    this.heldBytes += bytes;
    return true;
  }

  /** An admitted row of so many bytes that is held no more (its attempt ended, or it did not come after all). */
  drop(webhookId: string, bytes: number): void {
    const lane = this.lanes.get(webhookId);
    if (!lane) return;
    lane.held--;
    lane.tenant.held--;
    this.held--;
    this.heldBytes -= bytes;
    if (lane.held <= 0) this.lanes.delete(webhookId);
    if (lane.tenant.held <= 0) this.tenants.delete(lane.tenant.id);
  }

  /** An admitted row, waiting for its turn. */
  hold(row: R): void {
    this.lanes.get(row.webhook_id)?.waiting.push(row);
  }

  /** The rows to attempt now, one per webhook in turn, within both caps; they count as in flight. */
  next(): R[] {
    const out: R[] = [];
    for (let progress = true; progress && this.running < this.limits.global; ) {
      progress = false;
      for (const [id, lane] of [...this.lanes]) {
        if (this.running >= this.limits.global) break;
        if (!lane.waiting.length || lane.inFlight >= this.limits.perEndpoint || lane.tenant.inFlight >= this.limits.perTenant) continue;
        out.push(lane.waiting.shift()!);
        lane.inFlight++;
        lane.tenant.inFlight++;
        this.running++;
        progress = true;
        // Served: to the back of the turn.
        this.lanes.delete(id);
        this.lanes.set(id, lane);
      }
    }
    return out;
  }

  /** An attempt's request ended (its outcome is still being written): its slot is free. */
  answered(webhookId: string): void {
    const lane = this.lanes.get(webhookId);
    if (!lane) return;
    lane.inFlight--;
    lane.tenant.inFlight--;
    this.running--;
  }

  /**
   * Webhooks whose line is at least half full: a poll leaves their rows alone, so that it
   * refills a line by half a line at once rather than a row per look.
   */
  busy(): string[] {
    return [...this.lanes.keys()].filter((id) => 2 * this.lanes.get(id)!.held >= this.limits.aheadPerEndpoint);
  }

  /** Tenants whose webhooks hold half their share of rows or more: a poll leaves their rows alone too. */
  busyTenants(): string[] {
    return [...this.tenants.values()].filter((t) => 2 * t.held >= this.limits.heldPerTenant).map((t) => t.id);
  }

  /** Whether a poll would leave this webhook's rows alone (its line, or its tenant's share, half full or more). */
  isBusy(webhookId: string): boolean {
    const lane = this.lanes.get(webhookId);
    return !!lane && (2 * lane.held >= this.limits.aheadPerEndpoint || 2 * lane.tenant.held >= this.limits.heldPerTenant);
  }

  /** How many more rows may be held here. */
  room(): number {
    return this.limits.heldMax - this.held;
  }

  get inFlight(): number {
    return this.running;
  }

  /** Every row still waiting (not in flight), taken out of its line. */
  takeWaiting(): R[] {
    const out: R[] = [];
    for (const [id, lane] of this.lanes) {
      for (const row of lane.waiting.splice(0)) {
        out.push(row);
        this.drop(id, this.sizeOf(row));
      }
    }
    return out;
  }
}
