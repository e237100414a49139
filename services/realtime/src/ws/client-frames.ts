import { ClientFrame, WS_MAX_CLIENT_FRAME_BYTES, type WsErrorCode } from "@mam/contracts/ws-frames.ts";

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
