import { ClientFrame, WS_MAX_CLIENT_FRAME_BYTES, type WsErrorCode } from "@mam/contracts/ws-frames.ts";
import { TokenBucket } from "./token-bucket.ts";

/**
 * Frames a client may send: `perS` at once, then `perS` a second. Past that they are dropped,
 * and the client is told so at most once a second: a flood must not turn into a flood of answers.
 */
export class FrameGate {
  private readonly bucket: TokenBucket;
  private toldAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly perS: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.bucket = new TokenBucket({ burst: perS, refill: perS, everyMs: 1000, now });
  }

  /** "pass"; "drop" it unanswered; or "tell": drop it and send the client RATE_LIMITED. */
  admit(): "pass" | "drop" | "tell" {
    if (this.bucket.take()) return "pass";
    const now = this.now();
    if (now - this.toldAt < 1000) return "drop";
    this.toldAt = now;
    return "tell";
  }
}

/** A client frame, or why it is refused (the connection stays). */
export function readFrame(data: Buffer, isBinary: boolean): ClientFrame | { code: WsErrorCode; message: string } {
  if (isBinary) return { code: "INVALID_FRAME", message: "Frames are JSON text, not binary" };
  if (data.length > WS_MAX_CLIENT_FRAME_BYTES) return { code: "FRAME_TOO_LARGE", message: `A frame may have at most ${WS_MAX_CLIENT_FRAME_BYTES} bytes` };
  let json: unknown;
  try {
    json = JSON.parse(data.toString("utf8"));
  } catch {
    return { code: "INVALID_FRAME", message: "A frame must be a JSON object" };
  }
  const parsed = ClientFrame.safeParse(json);
  return parsed.success ? parsed.data : { code: "INVALID_FRAME", message: describeIssues(parsed.error.issues) };
}

/** Where a frame is wrong and how, without echoing what it holds. */
function describeIssues(issues: readonly { path: PropertyKey[]; message: string }[]): string {
  const text = issues
    .slice(0, 3)
    .map((i) => `${i.path.map(String).join(".") || "frame"}: ${i.message}`)
    .join("; ");
  return `Invalid frame: ${text}`.slice(0, 300);
}
