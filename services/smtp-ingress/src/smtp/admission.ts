import { addressBucket } from "@mam/runtime/client-address.ts";

/** What a connection is known by: smtp-server keeps one session object per connection. */
export interface Peer {
  remoteAddress: string;
}

/** Why a connection was turned away, or null when it was admitted. */
export type Refusal = "address" | "total" | null;

/**
 * Open connections in all and per remote address (an IPv4 address, or the /64 of an IPv6
 * one: a subscriber is usually handed a whole /64, and counting single addresses would give
 * it 2^64 fresh allowances). A connection counts from the moment it
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
    const bucket = addressBucket(peer.remoteAddress);
    const n = this.perAddress.get(bucket) ?? 0;
    if (n >= this.maxPerAddress) return "address";
    this.perAddress.set(bucket, n + 1);
    this.admitted.add(peer);
    this.total++;
    return null;
  }

  /** Called for every closed connection, admitted or not; only an admitted one frees its slot, once. */
  release(peer: Peer): void {
    if (!this.admitted.delete(peer)) return;
    this.total--;
    const bucket = addressBucket(peer.remoteAddress);
    const n = (this.perAddress.get(bucket) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(bucket);
    else this.perAddress.set(bucket, n);
  }

  /** Admitted connections open now, in all. */
  get open(): number {
    return this.total;
  }

  /** Connections open from an address now. */
  openFrom(remoteAddress: string): number {
    return this.perAddress.get(addressBucket(remoteAddress)) ?? 0;
  }
}
