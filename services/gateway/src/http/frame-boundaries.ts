/**
 * Where a replica's bytes to a client stand: still in the handshake's answer (up to its blank
 * line), inside a WebSocket frame, or between two frames. The gateway pipes those bytes
 * without reading them; this follows them (frame headers only, RFC 6455 5.2) so that, going
 * away, it can add a close frame of its own at a boundary instead of cutting one in half.
 */
export class FrameBoundaries {
  private inHandshake = true;
  /** The handshake's last bytes seen, to find its blank line across chunks. */
  private tail = "";
  /** A frame header's bytes seen so far (headers too may be split across chunks). */
  private header: Buffer = Buffer.alloc(0);
  /** Payload bytes left of the frame under way. */
  private remaining = 0;

  /** Between two frames: the handshake answered, no frame begun. */
  get atBoundary(): boolean {
    return !this.inHandshake && this.remaining === 0 && this.header.length === 0;
  }

  /** Follows all of `chunk`, passed on whole. */
  pass(chunk: Buffer): void {
    this.advance(chunk, false);
  }

  /**
   * How much of `chunk` to pass on so that the frame under way ends (none when between
   * frames already; all when it does not end within it): followed as passed.
   */
  passToBoundary(chunk: Buffer): number {
    return this.advance(chunk, true);
  }

  private advance(chunk: Buffer, stop: boolean): number {
    let at = 0;
    while (at < chunk.length) {
      if (stop && this.atBoundary) break;
      if (this.inHandshake) {
        const seen = this.tail + chunk.toString("latin1", at);
        const end = seen.indexOf("\r\n\r\n");
        if (end === -1) {
          this.tail = seen.slice(-3);
          return chunk.length;
        }
        at += end + 4 - this.tail.length;
        this.inHandshake = false;
        this.tail = "";
        continue;
      }
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - at);
        this.remaining -= n;
        at += n;
        continue;
      }
      at = this.readHeader(chunk, at);
    }
    return at;
  }

  /** Takes header bytes from `at`; once the header is whole, the payload's length is what remains. */
  private readHeader(chunk: Buffer, at: number): number {
    const need = (h: Buffer) => {
      if (h.length < 2) return 2;
      const len7 = h[1]! & 0x7f;
      const masked = (h[1]! & 0x80) !== 0;
      return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
    };
    while (at < chunk.length && this.header.length < need(this.header)) {
      const take = Math.min(need(this.header) - this.header.length, chunk.length - at);
      this.header = Buffer.concat([this.header, chunk.subarray(at, at + take)]);
      at += take;
    }
    if (this.header.length < 2 || this.header.length < need(this.header)) return at;
    const len7 = this.header[1]! & 0x7f;
    const payload = len7 === 126 ? this.header.readUInt16BE(2) : len7 === 127 ? Number(this.header.readBigUInt64BE(2)) : len7;
    this.header = Buffer.alloc(0);
    this.remaining = payload;
    return at;
  }
}

/** A close frame from the server's side (unmasked): `code` and a short reason. */
export function closeFrame(code: number, reason: string): Buffer {
  const text = Buffer.from(reason, "utf8").subarray(0, 123);
  const payload = Buffer.alloc(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  return Buffer.concat([Buffer.from([0x88, payload.length]), payload]);
}
