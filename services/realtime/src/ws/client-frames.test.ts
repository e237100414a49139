import { describe, expect, it } from "vitest";
import { FrameGate, readFrame } from "./client-frames.ts";

describe("FrameGate", () => {
  it("passes `perS` frames at once, then drops, telling the client once a second at most", () => {
    let clock = 50.25;
    const gate = new FrameGate(3, () => clock);
    const answers = (n: number) => Array.from({ length: n }, () => gate.admit());
    expect(answers(5)).toEqual(["pass", "pass", "pass", "tell", "drop"]);
    // Half a second later: 1.5 frames refilled, so one passes; the refusal after it is not told again yet.
    clock += 500;
    expect(answers(2)).toEqual(["pass", "drop"]);
    // A second after the last telling (0.5 left + 1.5 refilled): two pass, and the refusal is told again.
    clock += 500;
    expect(answers(4)).toEqual(["pass", "pass", "tell", "drop"]);
  });
});

describe("readFrame", () => {
  it("reads a subscribe frame, and refuses binary, oversized and malformed ones with a code", () => {
    expect(readFrame(Buffer.from('{"type":"ping"}'), false)).toMatchObject({ type: "ping" });
    expect(readFrame(Buffer.from('{"type":"ping"}'), true)).toMatchObject({ code: "INVALID_FRAME" });
    expect(readFrame(Buffer.from("{"), false)).toMatchObject({ code: "INVALID_FRAME" });
    expect(readFrame(Buffer.alloc(1024 * 1024, 32), false)).toMatchObject({ code: "FRAME_TOO_LARGE" });
  });
});
