/** What a connection is known by: smtp-server keeps one session object per connection. */
export interface Peer {
  remoteAddress: string;
}

/** Why a connection was turned away, or null when it was admitted. */
export type Refusal = "address" | "total" | null;

/**
 * Open connections in all and per remote address. A connection counts from the moment it
 * is admitted until it closes, and only then: smtp-server also reports the close of a
 * connection that was refused (by these caps, or by its own maxClients backstop), and
 * releasing a slot for those would let every refusal make room for one more connection.
 * The total is counted here rather than left to smtp-server's maxClients so that its
 * refusal carries an enhanced status code like every other.
 */
export class ConnectionAdmission {
  private readonly perAddress = new Map<string, number>();
  private readonly admitted = new WeakSet<Peer>();
  private total = 0;

  constructor(
    private readonly maxPerAddress: number,
    private readonly maxTotal = Number.POSITIVE_INFINITY,
  ) {}

  /** Null when the connection may proceed, and then it counts until `release`; else why not. */
  admit(peer: Peer): Refusal {
    if (this.admitted.has(peer)) return null;
    if (this.total >= this.maxTotal) return "total";
    const n = this.perAddress.get(peer.remoteAddress) ?? 0;
    if (n >= this.maxPerAddress) return "address";
    this.perAddress.set(peer.remoteAddress, n + 1);
    this.admitted.add(peer);
    this.total++;
    return null;
  }

  /** Called for every closed connection, admitted or not; only an admitted one frees its slot, once. */
  release(peer: Peer): void {
    if (!this.admitted.delete(peer)) return;
    this.total--;
    const n = (this.perAddress.get(peer.remoteAddress) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(peer.remoteAddress);
    else this.perAddress.set(peer.remoteAddress, n);
  }

  /** Admitted connections open now, in all. */
  get open(): number {
    return this.total;
  }

  /** Connections open from an address now. */
  openFrom(remoteAddress: string): number {
    return this.perAddress.get(remoteAddress) ?? 0;
  }
}
