import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";

/**
 * Answers an HTTP/1.1 request on a socket no server response object owns any more (an
 * upgrade request, refused before any upgrade), then ends the connection.
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
  socket.end(`${lines.join("\r\n")}\r\n\r\n${json}`);
}
