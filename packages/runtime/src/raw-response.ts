import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";

/** How long an answered connection may take to drain before it is cut anyway. */
const LINGER_MS = 10_000;

/**
 * Answers an HTTP/1.1 request on a socket no server response object owns any more (an
 * upgrade request, refused before any upgrade), then closes the connection: destroyed once
 * the answer is written (or after a while if the client does not read it), so that a client
 * that never closes its side cannot keep the socket open (no server timeout applies to it).
 */
export function endWithJson(socket: Duplex, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const json = JSON.stringify(body);
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}`,
    "Content-Type: application/json; charset=utf-8",
    `Content-Length: ${Buffer.byteLength(json)}`,
    "Connection: close",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  const linger = setTimeout(() => socket.destroy(), LINGER_MS);
  linger.unref();
  socket.once("close", () => clearTimeout(linger));
  // What the client sends meanwhile is read and dropped: nothing unread is left to reset the connection.
  socket.resume();
  socket.end(`${lines.join("\r\n")}\r\n\r\n${json}`, () => socket.destroy());
}
