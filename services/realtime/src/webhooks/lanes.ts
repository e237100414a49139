/** How much one replica holds and runs at once. */
export interface LaneLimits {
  /** Attempts in flight to one webhook. */
  perEndpoint: number;
  /** Attempts in flight in all. */
  global: number;
  /** Rows one webhook may hold here (in flight and waiting their turn). */
  aheadPerEndpoint: number;
  /** Rows held here in all. */
  heldMax: number;
  /** Bytes of the rows held here in all (their bodies): a single row is held whatever its size. */
  heldBytesMax: number;
}

interface Lane<R> {
  /** Admitted: waiting, in flight, or about to be queued. */
  held: number;
  inFlight: number;
  waiting: R[];
}

/**
 * One line per webhook of the deliveries this replica holds, and which go next: in turn
 * across webhooks, never more in flight than either cap. A webhook at its cap keeps its
 * rows waiting in its own line while the others' go.
 */
export class Lanes<R extends { webhook_id: string }> {
  private readonly lanes = new Map<string, Lane<R>>();
  private held = 0;
  private heldBytes = 0;
  private running = 0;

  constructor(
    private readonly limits: LaneLimits,
    /** The bytes a row holds (what `admit` was told). */
    private readonly sizeOf: (row: R) => number,
  ) {}

  /** Room for one more row of this webhook, of this many bytes: counted as held from now on. */
  admit(webhookId: string, bytes: number): boolean {
    const lane = this.lanes.get(webhookId);
    if (this.held >= this.limits.heldMax || (lane?.held ?? 0) >= this.limits.aheadPerEndpoint) return false;
    if (this.held > 0 && this.heldBytes + bytes > this.limits.heldBytesMax) return false;
    if (lane) lane.held++;
    else this.lanes.set(webhookId, { held: 1, inFlight: 0, waiting: [] });
    this.held++;
    this.heldBytes += bytes;
    return true;
  }

  /** An admitted row of so many bytes that is held no more (its attempt ended, or it did not come after all). */
  drop(webhookId: string, bytes: number): void {
    const lane = this.lanes.get(webhookId);
    if (!lane) return;
    lane.held--;
    this.held--;
    this.heldBytes -= bytes;
    if (lane.held <= 0) this.lanes.delete(webhookId);
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
        if (!lane.waiting.length || lane.inFlight >= this.limits.perEndpoint) continue;
        out.push(lane.waiting.shift()!);
        lane.inFlight++;
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
    this.running--;
  }

  /**
   * Webhooks whose line is at least half full: a poll leaves their rows alone, so that it
   * refills a line by half a line at once rather than a row per look.
   */
  busy(): string[] {
    return [...this.lanes.keys()].filter((id) => this.isBusy(id));
  }

  isBusy(webhookId: string): boolean {
    return 2 * (this.lanes.get(webhookId)?.held ?? 0) >= this.limits.aheadPerEndpoint;
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
