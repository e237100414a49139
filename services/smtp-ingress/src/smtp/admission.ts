/** What a connection is known by: smtp-server keeps one session object per connection. */
export interface Peer {
  remoteAddress: string;
}

/**
 * Open connections per remote address. A connection counts from the moment it is admitted
 * until it closes, and only then: smtp-server also reports the close of a connection that
 * was refused (by this cap, or by its own maxClients), and releasing a slot for those would
 * let every refusal make room for one more connection.
 */
export class ConnectionAdmission {
  private readonly perAddress = new Map<string, number>();
  private readonly admitted = new WeakSet<Peer>();

  constructor(private readonly maxPerAddress: number) {}

  /** True when the connection may proceed, and then it counts until `release`. */
  admit(peer: Peer): boolean {
    if (this.admitted.has(peer)) return true;
    const n = this.perAddress.get(peer.remoteAddress) ?? 0;
    if (n >= this.maxPerAddress) return false;
    this.perAddress.set(peer.remoteAddress, n + 1);
    this.admitted.add(peer);
    return true;
  }

  /** Called for every closed connection, admitted or not; only an admitted one frees its slot, once. */
  release(peer: Peer): void {
    if (!this.admitted.delete(peer)) return;
    const n = (this.perAddress.get(peer.remoteAddress) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(peer.remoteAddress);
    else this.perAddress.set(peer.remoteAddress, n);
  }

  /** Connections open from an address now. */
  openFrom(remoteAddress: string): number {
    return this.perAddress.get(remoteAddress) ?? 0;
  }
}
