import { describe, expect, it } from "vitest";
import { closeFrame, FrameBoundaries } from "./frame-boundaries.ts";

const handshake = Buffer.from("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", "latin1");
/** A server frame (unmasked) with `n` bytes of payload. */
const frame = (n: number) => {
  const head =
    n < 126 ? Buffer.from([0x81, n]) : n < 65_536 ? Buffer.from([0x81, 126, n >> 8, n & 0xff]) : Buffer.concat([Buffer.from([0x81, 127]), bigLength(n)]);
  return Buffer.concat([head, Buffer.alloc(n, 0x61)]);
};
const bigLength = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};

describe("FrameBoundaries", () => {
  it("is between frames only once the handshake's answer ended and each frame whole, whatever the chunks", () => {
    const stream = Buffer.concat([handshake, frame(5), frame(300), frame(70_000), frame(0)]);
    const ends = new Set([handshake.length]);
    let at = handshake.length;
    for (const n of [5, 300, 70_000, 0]) ends.add((at += frame(n).length));
    for (const size of [1, 2, 3, 7, 1000, stream.length]) {
      const f = new FrameBoundaries();
      const boundaries: number[] = [];
      for (let i = 0; i < stream.length; i += size) {
        // Byte by byte within the chunk, to see every position.
        const chunk = stream.subarray(i, Math.min(i + size, stream.length));
        for (let j = 0; j < chunk.length; j++) {
          f.pass(chunk.subarray(j, j + 1));
          if (f.atBoundary) boundaries.push(i + j + 1);
        }
      }
      expect(new Set(boundaries)).toEqual(ends);
    }
  });

  it("passes to the end of the frame under way and no further; none between frames; all when it does not end", () => {
    const f = new FrameBoundaries();
    f.pass(Buffer.concat([handshake, frame(10).subarray(0, 4)]));
    expect(f.passToBoundary(Buffer.concat([frame(10).subarray(4), frame(3)]))).toBe(8);
    expect(f.atBoundary).toBe(true);
    expect(f.passToBoundary(frame(3))).toBe(0);
    const g = new FrameBoundaries();
    g.pass(handshake);
    g.pass(frame(100).subarray(0, 50));
    expect(g.passToBoundary(frame(100).subarray(50, 60))).toBe(10);
    expect(g.atBoundary).toBe(false);
  });

  it("makes a close frame with its code and reason", () => {
    expect(closeFrame(1001, "bye")).toEqual(Buffer.from([0x88, 5, 0x03, 0xe9, 0x62, 0x79, 0x65]));
  });
});
